"""Training sampler and augmentations (spec §3.8-3.10) on small in-memory and on-disk fake datasets."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mixformerv2.data.augment import (
    CropRoll,
    JointRoll,
    apply_crop,
    apply_joint,
    crop_to_tensor,
    denormalize,
    flip_box,
    paste_lookalike,
    paste_occluder,
    roll_crop,
    roll_joint,
)
from mixformerv2.data.sampling import (
    ProcessingConfig,
    SamplerConfig,
    SamplingError,
    SequenceCache,
    TrackingSampler,
    box_in_crop,
    center_box,
    jittered_box,
    padding_mask_valid,
    sample_frame_ids,
    sequence_usable,
)
from mixformerv2.data.sequence import Sequence
from mixformerv2.errors import ConfigError
from mixformerv2.geometry import CropInfo, crop_around, crop_padding_mask
from mixformerv2.tracking.tracker import IMAGENET_MEAN, IMAGENET_STD

H, W = 120, 160
RED, YELLOW = (255, 0, 0), (255, 255, 0)


def render(index: int, box) -> np.ndarray:
    """Background (index % 200, 40, 80) encodes the frame id; the object is red (left) | yellow (right)."""
    frame = np.empty((H, W, 3), np.uint8)
    frame[:] = (index % 200, 40, 80)
    x, y, w, h = (int(round(v)) for v in box)
    if w > 0 and h > 0:
        frame[y : y + h, x : x + w // 2] = RED
        frame[y : y + h, x + w // 2 : x + w] = YELLOW
    return frame


def moving_boxes(n: int) -> np.ndarray:
    t = np.arange(n)
    return np.stack([40 + (t % 30), 35 + (t % 20) // 2, np.full(n, 24.0), np.full(n, 18.0)], axis=1)


class GeneratedSequence(Sequence):
    """A sequence whose frames are rendered in memory (no files)."""

    def read_frame(self, index: int) -> np.ndarray:
        return render(index, self.boxes[index])


def make_sequence(name: str, visible, boxes=None) -> GeneratedSequence:
    visible = np.asarray(visible, bool)
    n = len(visible)
    boxes = moving_boxes(n) if boxes is None else boxes
    return GeneratedSequence(name, [Path(f"{name}/{i:08d}.jpg") for i in range(n)], boxes, visible)


class FakeDataset:
    def __init__(self, sequences, name="fake", is_video=True):
        self.sequences, self.name, self._video = list(sequences), name, is_video

    @property
    def is_video(self) -> bool:
        return self._video

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> Sequence:
        return self.sequences[index]


def plain(**kw) -> ProcessingConfig:
    """Small crops and no photometric noise, so crop contents can be checked."""
    base = dict(search_size=64, template_size=32, grayscale_prob=0.0, brightness_jitter=0.0)
    base.update(kw)
    return ProcessingConfig(**base)


@pytest.fixture
def video():
    return FakeDataset([make_sequence("a", np.ones(40)), make_sequence("b", np.ones(30))])


@pytest.fixture
def jpg_video(tmp_path):
    """A GOT-10k-like video written as real JPG files, read by the base Sequence."""
    n = 24
    boxes = moving_boxes(n)
    frames = []
    for i in range(n):
        path = tmp_path / "vid" / f"{i + 1:08d}.jpg"
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(render(i, boxes[i]), cv2.COLOR_RGB2BGR))
        frames.append(path)
    return FakeDataset([Sequence("vid", frames, boxes, np.ones(n, bool))], name="jpg")


def decode_index(crop_tensor: torch.Tensor) -> int:
    """Frame id from the background pixels of a crop (neither object nor padding)."""
    rgb = denormalize(crop_tensor).astype(int)
    background = (abs(rgb[..., 1] - 40) <= 2) & (abs(rgb[..., 2] - 80) <= 2)
    return int(np.median(rgb[..., 0][background]))


# -- outputs --------------------------------------------------------------------------------------------
def test_output_keys_shapes_dtypes_at_release_sizes(video):
    ds = TrackingSampler([video], sampler=SamplerConfig(samples_per_epoch=7), processing=ProcessingConfig())
    assert len(ds) == 7
    out = ds[3]
    assert set(out) == {"template", "online_template", "search", "search_anno", "label", "resampled"}
    assert out["template"].shape == out["online_template"].shape == (3, 128, 128)
    assert out["search"].shape == (3, 288, 288)
    assert out["search_anno"].shape == (4,)
    for key in ("template", "online_template", "search", "search_anno", "label"):
        assert out[key].dtype == torch.float32, key
    assert out["label"].shape == () and out["label"].item() == 1.0
    assert out["resampled"].shape == () and out["resampled"].dtype == torch.int64
    for key in ("template", "online_template", "search"):
        assert out[key].is_contiguous() and torch.isfinite(out[key]).all()


def test_batch_layout_through_default_collate(video):
    ds = TrackingSampler([video], sampler=SamplerConfig(samples_per_epoch=6), processing=plain())
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert batch["template"].shape == (3, 3, 32, 32) and batch["search"].shape == (3, 3, 64, 64)
    assert batch["search_anno"].shape == (3, 4) and batch["label"].shape == (3,)


# -- determinism ------------------------------------------------------------------------------------------
def _equal(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a if isinstance(a[k], torch.Tensor))


def test_samples_are_a_pure_function_of_seed_epoch_index(video):
    cfg = SamplerConfig(samples_per_epoch=10, mode="trident_pro", train_score=True)
    one = TrackingSampler([video], sampler=cfg, processing=plain(), seed=3)
    two = TrackingSampler([video], sampler=cfg, processing=plain(), seed=3)
    for i in (0, 5, 9):
        assert _equal(one[i], two[i]) and _equal(one[i], one[i])
    assert not _equal(one[0], one[1])
    two.set_epoch(1)
    assert not _equal(one[4], two[4])
    assert _equal(one[(1, 4)], two[4])  # (epoch, index) indexing, for persistent workers
    other_seed = TrackingSampler([video], sampler=cfg, processing=plain(), seed=4)
    assert not _equal(one[4], other_seed[4])


class CountingDataset(FakeDataset):
    """Counts sequence loads (a reader re-reads listing and annotation files on each one)."""

    def __init__(self, sequences):
        super().__init__(sequences)
        self.loads = 0

    def __getitem__(self, index: int) -> Sequence:
        self.loads += 1
        return super().__getitem__(index)


def test_sampler_loads_each_sequence_once_and_samples_stay_the_same():
    cfg = SamplerConfig(samples_per_epoch=40)
    counted = CountingDataset([make_sequence("a", np.ones(40)), make_sequence("b", np.ones(30))])
    cached = TrackingSampler([counted], sampler=cfg, processing=plain(), seed=5)
    samples = [cached[i] for i in range(40)]
    assert counted.loads == 2
    fresh = CountingDataset(counted.sequences)
    for i in (0, 17, 39):  # each from a new sampler, so nothing cached
        assert _equal(samples[i], TrackingSampler([fresh], sampler=cfg, processing=plain(), seed=5)[i])


def test_sequence_cache_evicts_least_recently_used_within_its_frame_budget():
    cache = SequenceCache(max_frames=50)
    seqs = {name: make_sequence(name, np.ones(20)) for name in "abc"}
    loads = []

    def get(name):
        return cache.get((0, ord(name)), lambda: loads.append(name) or seqs[name])

    get("a"), get("b"), get("a")  # a is now the most recent
    get("c")  # 60 frames > 50: b goes
    get("a"), get("c")
    assert loads == ["a", "b", "c"] and len(cache) == 2
    get("b")
    assert loads[-1] == "b"
    big = make_sequence("big", np.ones(60))
    assert cache.get((1, 0), lambda: big) is big and len(cache) == 2  # larger than the budget: not kept


def test_dataloader_with_workers_gives_the_same_batches(jpg_video):
    ds = TrackingSampler([jpg_video], sampler=SamplerConfig(samples_per_epoch=8), processing=plain(), seed=1)
    ds.set_epoch(2)
    serial = list(torch.utils.data.DataLoader(ds, batch_size=4, num_workers=0))
    parallel = list(torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2))
    assert len(serial) == len(parallel) == 2
    for a, b in zip(serial, parallel):
        assert _equal(a, b)
    # resuming mid-epoch reproduces the second batch
    resumed = next(iter(torch.utils.data.DataLoader(torch.utils.data.Subset(ds, range(4, 8)), batch_size=4)))
    assert _equal(resumed, serial[1])


# -- frame ids --------------------------------------------------------------------------------------------
def test_causal_ids_order_and_window():
    rng = np.random.default_rng(0)
    visible = np.ones(300, bool)
    for _ in range(2000):
        (base, prev), search = sample_frame_ids(visible, "causal", 10, rng)
        assert 1 <= base < 299
        assert 1 <= base - prev <= 10  # fully visible: the first window always has a frame
        assert 1 <= search - base <= 9
    # with occlusions: every id visible, order kept, windows widened by 5 per miss
    visible = rng.random(300) < 0.3
    visible[:3] = False
    for _ in range(2000):
        (base, prev), search = sample_frame_ids(visible, "causal", 4, rng)
        assert visible[[base, prev, search]].all()
        assert prev < base < search and 1 <= base < 299


def test_sampler_feeds_later_frame_as_template_and_earlier_as_online(video):
    ds = TrackingSampler([video], sampler=SamplerConfig(samples_per_epoch=40), processing=plain(), with_info=True)
    for i in range(40):
        out = ds[i]
        base, prev = out["info"]["template_ids"]
        search = out["info"]["search_id"]
        assert prev < base < search
        assert decode_index(out["template"]) == base
        assert decode_index(out["online_template"]) == prev
        assert decode_index(out["search"]) == search


def test_trident_pro_window_rule_and_invisible_dynamic_template():
    rng = np.random.default_rng(1)
    visible = rng.random(500) < 0.5
    saw_invisible = saw_after = saw_before = False
    for _ in range(3000):
        (first, dynamic), search = sample_frame_ids(visible, "trident_pro", 50, rng)
        assert visible[first] and visible[search]
        if first >= search:
            assert search <= dynamic < search + 50
            saw_after = True
        else:
            assert search - 50 <= dynamic < search
            saw_before = True
        saw_invisible |= not visible[dynamic]
    assert saw_invisible and saw_after and saw_before


def test_unusable_sequences_are_skipped_and_counted():
    few = np.zeros(40, bool)
    few[[2, 5, 9, 14, 20, 31]] = True  # 6 visible: not > 6
    ok = np.ones(25, bool)
    ok[::3] = False
    data = FakeDataset([make_sequence("few", few), make_sequence("short", np.ones(19)), make_sequence("ok", ok)])
    assert not sequence_usable(data[0], True) and not sequence_usable(data[1], True) and sequence_usable(data[2], True)
    ds = TrackingSampler([data], sampler=SamplerConfig(samples_per_epoch=60), processing=plain(), with_info=True)
    outs = [ds[i] for i in range(60)]
    assert {o["info"]["sequence"] for o in outs} == {"ok"}
    assert sum(int(o["resampled"]) for o in outs) > 20  # 2/3 of the sequence draws are rejected
    for o in outs:
        assert ok[o["info"]["template_ids"]].all() and ok[o["info"]["search_id"]]


def test_image_dataset_uses_one_image_for_all_three_crops():
    seq = GeneratedSequence("img", [Path("x.jpg")], [[50, 40, 30, 20]], [True])
    assert sequence_usable(seq, False)
    ds = TrackingSampler(
        [FakeDataset([seq], name="coco", is_video=False)],
        sampler=SamplerConfig(samples_per_epoch=5), processing=plain(), with_info=True,
    )
    out = ds[0]
    assert out["info"]["template_ids"] == [0, 0] and out["info"]["search_id"] == 0
    assert int(out["resampled"]) == 0


def test_dataset_ratios_are_respected(video):
    other = FakeDataset([make_sequence("z", np.ones(25))], name="other")
    ds = TrackingSampler([video, other], ratios=[3, 1], sampler=SamplerConfig(samples_per_epoch=400),
                         processing=plain(search_size=32, template_size=16), with_info=True)
    names = [ds[i]["info"]["dataset"] for i in range(400)]
    assert 0.68 < names.count("fake") / 400 < 0.82
    with pytest.raises(ConfigError):
        TrackingSampler([video], ratios=[1, 2])


# -- geometry: jitter, crops, boxes ------------------------------------------------------------------------
def test_jittered_box_statistics_and_zero_jitter():
    rng = np.random.default_rng(5)
    box = np.array([100.0, 50.0, 40.0, 20.0])
    draws = np.array([jittered_box(box, rng, 4.5, 0.5) for _ in range(20000)])
    log_ratio = np.log(draws[:, 2:] / box[2:])
    assert np.allclose(log_ratio.mean(0), 0, atol=0.02)
    assert np.allclose(log_ratio.std(0), 0.5, atol=0.02)
    offset = (draws[:, :2] + draws[:, 2:] / 2 - (box[:2] + box[2:] / 2)) / np.sqrt(draws[:, 2:3] * draws[:, 3:4])
    assert np.abs(offset).max() <= 2.25 + 1e-9
    assert np.allclose(offset.std(0), 4.5 / np.sqrt(12), rtol=0.03)
    # zero jitter: the box is unchanged, and the stream advances exactly as with jitter
    a, b = np.random.default_rng(9), np.random.default_rng(9)
    assert np.allclose(jittered_box(box, a, 0.0, 0.0), box)
    jittered_box(box, b, 4.5, 0.5)
    assert a.random() == b.random()


def test_box_in_crop_formula():
    gt, jit = [30.0, 40.0, 20.0, 10.0], [28.0, 41.0, 22.0, 12.0]
    rf, size = 2.5, 64
    cx = (size - 1) / 2 + ((30 + 10) - (28 + 11)) * rf
    cy = (size - 1) / 2 + ((40 + 5) - (41 + 6)) * rf
    expected = np.array([cx - 25, cy - 12.5, 50, 25]) / size
    np.testing.assert_allclose(box_in_crop(gt, jit, rf, size), expected)
    info = CropInfo(26, 0, 0, 0, 0, 0, 0, size / 26)
    np.testing.assert_allclose(box_in_crop(gt, gt, info, size)[2:], np.array([20, 10]) / 26)


@pytest.mark.parametrize("factor", [5.0, 4.5])
def test_zero_jitter_puts_the_target_at_the_crop_centre(video, factor):
    proc = plain(search_center_jitter=0.0, search_scale_jitter=0.0, flip_prob=0.0, search_factor=factor)
    ds = TrackingSampler([video], sampler=SamplerConfig(samples_per_epoch=20), processing=proc)
    for i in range(20):
        x, y, w, h = ds[i]["search_anno"].double().numpy()
        s = proc.search_size
        np.testing.assert_allclose([x + w / 2, y + h / 2], (s - 1) / (2 * s), atol=1e-6)
        side = np.ceil(np.sqrt(24 * 18) * factor)
        assert w * h == pytest.approx(24 * 18 / side**2, rel=1e-5)
        assert w * h == pytest.approx(1 / factor**2, rel=0.05)


def test_near_share_of_search_crops_has_its_centre_jitter_scaled(video):
    """search_near_prob: that share of search crops takes search_near_scale x the centre jitter (here 0: the
    target exactly centred), the rest the full jitter; 0 (the official setting) keeps the random stream."""
    def centre_offsets(**near):
        proc = plain(search_center_jitter=2.0, search_scale_jitter=0.0, flip_prob=0.0, **near)
        ds = TrackingSampler([video], sampler=SamplerConfig(samples_per_epoch=200), processing=proc)
        offsets = []
        for i in range(200):
            x, y, w, h = ds[i]["search_anno"].double().numpy()
            offsets.append(np.abs(np.array([x + w / 2, y + h / 2]) - (proc.search_size - 1) / (2 * proc.search_size)).max())
        return np.array(offsets)

    centred = centre_offsets(search_near_prob=0.5, search_near_scale=0.0) < 1e-6
    assert 0.35 < centred.mean() < 0.65
    assert not (centre_offsets() < 1e-6).any()
    np.testing.assert_array_equal(centre_offsets(), centre_offsets(search_near_prob=0.0, search_near_scale=0.0))
    assert (centre_offsets(search_near_prob=1.0, search_near_scale=0.0) < 1e-6).all()
    with pytest.raises(ConfigError, match="search_near_prob"):
        plain(search_near_prob=1.5)


def _seeded_pastes(paste, base: np.ndarray, box_norm: np.ndarray, padding: np.ndarray) -> list:
    """(crop, returned box) of the pastes, over 30 seeds, that found a place (at least 20); the
    others, and a paste around a 3 px target, must leave the crop as it was."""
    found = []
    for seed in range(30):
        crop = base.copy()
        where = paste(crop, box_norm, np.random.default_rng(seed), padding=padding)
        if where is None:
            np.testing.assert_array_equal(crop, base)
        else:
            found.append((crop, where))
    assert len(found) >= 20
    tiny = base.copy()
    assert paste(tiny, np.array([55.0, 55.0, 3.0, 3.0]) / len(base), np.random.default_rng(0)) is None
    np.testing.assert_array_equal(tiny, base)
    return found


def test_lookalike_paste_puts_a_copy_farther_from_the_centre_than_the_target():
    size, box = 112, np.array([50.0, 54.0, 16.0, 12.0])  # the target just off the centre
    base = np.full((size, size, 3), 100, np.uint8)
    base[54:66, 50:58], base[54:66, 58:66] = RED, YELLOW
    padding = np.zeros((size, size), bool)
    padding[:, :40] = True  # the crop's left part lies outside the image
    centre = (size - 1) / 2
    for crop, copy_box in _seeded_pastes(paste_lookalike, base, box / size, padding):
        x, y, w, h = copy_box
        np.testing.assert_array_equal(crop[54:66, 50:66], base[54:66, 50:66])  # the target is untouched
        assert x + w <= 50 or x >= 66 or y + h <= 54 or y >= 66  # beside it, not over it
        assert x >= 40  # not on padding
        assert 0.8 * 16 - 1 <= w <= 1.25 * 16 + 1 and 0.8 * 12 - 1 <= h <= 1.25 * 12 + 1
        copy_c, target_c = np.array([x + w / 2, y + h / 2]), np.array([58.0, 60.0])
        assert np.hypot(*(copy_c - centre)) >= np.hypot(*(target_c - centre)) + 0.5 * np.sqrt(w * h)
        core = crop[int(y + h / 2) - 1:int(y + h / 2) + 2, int(x + 0.25 * w):int(x + 0.75 * w)]
        assert (core[..., 0] > 200).all() and (core[..., 2] < 60).all()  # the copy shows the target's colours
        outside = np.ones((size, size), bool)
        outside[int(y):int(y + h), int(x):int(x + w)] = False
        outside[54:66, 50:66] = False
        np.testing.assert_array_equal(crop[outside], base[outside])  # nothing else changed


def test_near_lookalike_paste_puts_a_copy_next_to_the_target_partly_over_it():
    """near=True: a look-alike passing close by: centres 0.6-1.2 mean sizes apart, hiding at most a
    third of the target, still farther from the crop centre, never on padding."""
    size, box = 112, np.array([50.0, 54.0, 16.0, 12.0])
    base = np.full((size, size, 3), 100, np.uint8)
    base[54:66, 50:58], base[54:66, 58:66] = RED, YELLOW
    padding = np.zeros((size, size), bool)
    padding[:, :40] = True
    centre, target_c = (size - 1) / 2, np.array([58.0, 60.0])
    paste = lambda *a, **k: paste_lookalike(*a, near=True, **k)  # noqa: E731
    overlapping = 0
    for crop, copy_box in _seeded_pastes(paste, base, box / size, padding):
        x, y, w, h = copy_box
        assert x >= 40
        copy_c = np.array([x + w / 2, y + h / 2])
        mean_size = (np.sqrt(16 * 12) + np.sqrt(w * h)) / 2
        assert 0.6 * mean_size - 1 <= np.hypot(*(copy_c - target_c)) <= 1.2 * mean_size + 1
        assert np.hypot(*(copy_c - centre)) >= np.hypot(*(target_c - centre)) + 0.1 * np.sqrt(w * h)
        hidden = max(0, min(x + w, 66) - max(x, 50)) * max(0, min(y + h, 66) - max(y, 54)) / (16 * 12)
        assert hidden <= 1 / 3 + 1e-9
        overlapping += hidden > 0
        outside = np.ones((size, size), bool)
        outside[int(y):int(y + h), int(x):int(x + w)] = False
        np.testing.assert_array_equal(crop[outside], base[outside])  # only the copy's box changed
    assert overlapping >= 5  # some pass in front of the target, not only beside it


def test_near_share_of_lookalike_pastes_changes_only_where_the_copy_goes(video):
    """lookalike_near_prob: that share of the pasted copies goes next to the target; templates and box
    targets stay, and 0 (the default) keeps the stream of plain look-alike pastes."""
    def draw(**near):
        proc = plain(search_center_jitter=1.0, search_scale_jitter=0.0, flip_prob=0.0, search_size=96,
                     lookalike_paste_prob=1.0, **near)
        ds = TrackingSampler([video], sampler=SamplerConfig(samples_per_epoch=40), processing=proc)
        return [ds[i] for i in range(40)]

    default, off, on = draw(), draw(lookalike_near_prob=0.0), draw(lookalike_near_prob=1.0)
    changed = 0
    for a, b, c in zip(default, off, on):
        assert torch.equal(a["search"], b["search"])
        assert torch.equal(a["template"], c["template"]) and torch.equal(a["search_anno"], c["search_anno"])
        changed += not torch.equal(a["search"], c["search"])
    assert changed >= 20
    with pytest.raises(ConfigError, match="lookalike_near_prob"):
        plain(lookalike_near_prob=2.0)


def test_occluder_paste_hides_part_of_the_target_with_background():
    size, box = 112, np.array([40.0, 36.0, 24.0, 32.0])
    base = np.full((size, size, 3), 100, np.uint8)
    base[36:68, 40:64] = RED
    base[80:, :] = (20, 200, 20)  # a green floor: the only other texture a bar can come from
    padding = np.zeros((size, size), bool)
    padding[:, 100:] = True  # the crop's right part lies outside the image
    base[padding] = 0
    for crop, bar in _seeded_pastes(paste_occluder, base, box / size, padding):
        x, y, w, h = bar.astype(int)
        inside = np.zeros((size, size), bool)
        inside[y:y + h, x:x + w] = True
        np.testing.assert_array_equal(crop[~inside], base[~inside])  # nothing outside the bar changed
        np.testing.assert_array_equal(crop[padding], base[padding])  # nor the padding
        target = crop[36:68, 40:64]
        hidden = 1.0 - ((target[..., 0] == RED[0]) & (target[..., 1] == RED[1])).mean()
        assert 0.1 <= hidden <= 0.65  # part of the target is hidden, never all of it
        # inside its soft rim the bar shows background (grey or floor, re-lit), not the target
        core = crop[y + 2:y + h - 2, x + 2:x + w - 2][~padding[y + 2:y + h - 2, x + 2:x + w - 2]]
        assert not ((core[:, 0] > 200) & (core[:, 1] < 40)).any()


@pytest.mark.parametrize("option", ["lookalike_paste_prob", "occluder_paste_prob"])
def test_paste_share_changes_search_crops_only(video, option):
    """lookalike_paste_prob / occluder_paste_prob: that share of search crops gets a pasted copy
    of the target / a bar across it; the templates and the box targets stay as they were, and 0
    (official) keeps the random stream."""
    def draw(**paste):
        proc = plain(search_center_jitter=1.0, search_scale_jitter=0.0, flip_prob=0.0, search_size=96, **paste)
        ds = TrackingSampler([video], sampler=SamplerConfig(samples_per_epoch=40), processing=proc)
        return [ds[i] for i in range(40)]

    default, off, on = draw(), draw(**{option: 0.0}), draw(**{option: 1.0})
    changed = 0
    for a, b, c in zip(default, off, on):
        for key in ("search", "template", "search_anno"):
            assert torch.equal(a[key], b[key])
        assert torch.equal(a["template"], c["template"]) and torch.equal(a["search_anno"], c["search_anno"])
        changed += not torch.equal(a["search"], c["search"])
    assert changed >= 30
    with pytest.raises(ConfigError, match=option):
        plain(**{option: -0.1})


def test_motion_input_adds_the_difference_to_the_previous_frame_in_the_same_window(video):
    """processing.motion_input: the search crop gets 3 channels more, itself minus the previous frame
    cropped in the same window (flipped alike); everything else, the random stream
    included, stays as without it. Pasted look-alikes stand still (they are in both frames) or,
    with moving_paste_prob, move."""
    def draw(**kw):
        proc = plain(search_center_jitter=1.0, search_size=96, **kw)
        ds = TrackingSampler([video], sampler=SamplerConfig(samples_per_epoch=30), processing=proc, with_info=True)
        return [ds[i] for i in range(30)]

    off, on = draw(), draw(motion_input=True)
    for a, b in zip(off, on):
        assert b["search"].shape == (6, 96, 96)
        torch.testing.assert_close(b["search"][:3], a["search"], atol=0, rtol=0)
        for key in ("template", "online_template", "search_anno"):
            assert torch.equal(a[key], b[key])
        previous = b["search"][:3] - b["search"][3:]
        assert decode_index(previous) == max(b["info"]["search_id"] - 1, 0) % 200
    pasted_off = draw(lookalike_paste_prob=1.0, flip_prob=0.0)
    pasted_on = draw(lookalike_paste_prob=1.0, flip_prob=0.0, motion_input=True)
    plain_on = draw(flip_prob=0.0, motion_input=True)
    with_paste = 0
    for a, b, c in zip(pasted_off, pasted_on, plain_on):
        torch.testing.assert_close(b["search"][:3], a["search"], atol=0, rtol=0)
        pasted = (b["search"][:3] != c["search"][:3]).any(0)
        with_paste += int(pasted.sum() > 20)
        assert not b["search"][3:, pasted].any()
    assert with_paste >= 20
    moving = draw(lookalike_paste_prob=1.0, flip_prob=0.0, motion_input=True, moving_paste_prob=1.0)
    moved = 0
    for b, c in zip(moving, plain_on):
        pasted = (b["search"][:3] != c["search"][:3]).any(0)
        moved += int(pasted.sum() > 20 and b["search"][3:, pasted].abs().sum(0).gt(0.05).float().mean() > 0.2)
    assert moved >= 20  # the moving look-alikes show in the difference
    with pytest.raises(ConfigError, match="motion_input"):
        plain(motion_input=1)


def _object_extent(crop_rgb: np.ndarray):
    mask = (crop_rgb[..., 0] > 200) & (crop_rgb[..., 2] < 40)
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return None
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1, mask


def test_search_anno_covers_the_object_with_jitter_and_flips(video):
    proc = plain(search_size=128, search_factor=4.0)
    ds = TrackingSampler([video], sampler=SamplerConfig(samples_per_epoch=80), processing=proc, with_info=True)
    flips, checked = set(), 0
    for i in range(80):
        out = ds[i]
        crop = denormalize(out["search"])
        x, y, w, h = out["search_anno"].numpy() * 128
        extent = _object_extent(crop)
        if extent is None:  # centre jitter 4.5 can move the object out of a factor-4 crop
            assert x + w < 2 or y + h < 2 or x > 126 or y > 126
            continue
        x1, y1, x2, y2, mask = extent
        rf = w / 24  # crop px per image px (the object is 24 px wide)
        if out["info"]["joint_flip"]:
            # the official frame flip x' = (W-1) - x - w leaves the box 1 image px left of the
            # mirrored content; a crop flip mirrors that offset
            x += -rf if out["info"]["crop_flips"][2] else rf
        tol = 0.75 * rf + 1.5  # crop-origin rounding (half an image px) and edge blur
        for got, want, cut in ((x1, x, x1 == 0), (y1, y, y1 == 0), (x2, x + w, x2 == 128), (y2, y + h, y2 == 128)):
            assert cut or abs(got - want) <= tol, (i, got, want, tol)
        if x1 == 0 or x2 == 128:
            continue  # one half of the object may be cut off
        # red half on the left unless exactly one of the two flips happened
        flipped = out["info"]["joint_flip"] ^ out["info"]["crop_flips"][2]
        ys, xs = np.nonzero(mask)
        yellow = crop[ys, xs, 1] > 150
        red_left = xs[~yellow].mean() < xs[yellow].mean()
        assert red_left != flipped, i
        flips.add(flipped)
        checked += 1
    assert flips == {True, False} and checked > 40


def test_joint_flip_maps_box_to_the_same_content():
    box = np.array([30.0, 20.0, 40.0, 24.0])
    frame = render(7, box)
    flipped, fbox = apply_joint(frame, box, JointRoll(grayscale=False, flip=True))
    np.testing.assert_allclose(fbox, [(W - 1) - 30 - 40, 20, 40, 24])
    x = int(fbox[0])
    # official convention (pixel centres on [0, W-1]): the object occupies columns x'+1 .. x'+w
    np.testing.assert_array_equal(flipped[20:44, x + 1 : x + 41], frame[20:44, 30:70][:, ::-1])
    np.testing.assert_array_equal(flip_box(fbox, W), box)
    gray, gbox = apply_joint(frame, box, JointRoll(grayscale=True, flip=False))
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    np.testing.assert_array_equal(gray[..., 0], cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
    np.testing.assert_array_equal(gbox, box)


def test_crop_flip_maps_normalised_box_to_the_same_content():
    crop = render(3, [8, 10, 20, 12])[:64, :64].copy()
    anno = np.array([8, 10, 20, 12]) / 64
    tensor, fbox = apply_crop(crop, anno, CropRoll(1.0, True))
    np.testing.assert_allclose(fbox, [1 - 28 / 64, 10 / 64, 20 / 64, 12 / 64])
    back = denormalize(tensor)
    x = int(round(fbox[0] * 64))
    # pixel-index convention here: the object's columns 8..27 become 36..55 = x'·S .. x'·S + w·S − 1
    np.testing.assert_array_equal(back[10:22, x : x + 20], crop[10:22, 8:28][:, ::-1])


def test_crop_transform_matches_official_float32_ops():
    rng = np.random.default_rng(2)
    crop = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    for roll in (CropRoll(1.13, False), CropRoll(0.85, True), CropRoll(1.2, False)):
        ours = crop_to_tensor(crop, roll)
        ref = torch.from_numpy(crop.transpose(2, 0, 1)).float().mul(roll.brightness / 255.0).clamp(0.0, 1.0)
        if roll.flip:
            ref = ref.flip((2,))
        ref = (ref - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
        assert torch.equal(ours, ref)
    factors = [roll_crop(rng, 0.2, 0.5).brightness for _ in range(5000)]
    assert 0.8 <= min(factors) and max(factors) <= 1.2 and abs(np.mean(factors) - 1) < 0.01
    rolls = [roll_joint(rng, 0.05, 0.5) for _ in range(20000)]
    assert abs(np.mean([r.grayscale for r in rolls]) - 0.05) < 0.01
    assert abs(np.mean([r.flip for r in rolls]) - 0.5) < 0.02


# -- padding mask and validity ------------------------------------------------------------------------------
def _official_mask(info: CropInfo, out_size: int) -> np.ndarray:
    """The official construction: float64 mask on the side x side crop, cv2.resize, astype(bool)."""
    mask = np.ones((info.side, info.side))
    end_y = -info.pad_bottom if info.pad_bottom else None
    end_x = -info.pad_right if info.pad_right else None
    mask[info.pad_top : end_y, info.pad_left : end_x] = 0
    return cv2.resize(mask, (out_size, out_size)).astype(np.bool_)


def test_crop_padding_mask_equals_official_construction():
    rng = np.random.default_rng(11)
    for _ in range(600):
        out = int(rng.choice([7, 16, 32, 112, 128, 224, 288]))
        side = int(rng.choice([1, 3, max(1, out // 2), out, 2 * out, 3 * out, rng.integers(1, 4 * out)]))
        pads = [int(rng.integers(0, side + 2)) if rng.random() < 0.5 else 0 for _ in range(4)]
        info = CropInfo(side, 0, 0, *pads, out / side)
        np.testing.assert_array_equal(crop_padding_mask(info, out), _official_mask(info, out), err_msg=str(info))
    # and on real crops near the image border
    image = np.zeros((100, 150, 3), np.uint8)
    for box in ([0, 0, 20, 20], [140, 90, 10, 10], [60, 40, 20, 20], [-30, 50, 20, 10]):
        _, info = crop_around(image, box, 5.0, 64)
        np.testing.assert_array_equal(crop_padding_mask(info, 64), _official_mask(info, 64))


def test_padding_mask_validity_rules():
    assert padding_mask_valid(np.zeros((32, 32), bool))
    assert not padding_mask_valid(np.ones((32, 32), bool))
    sparse = np.ones((32, 32), bool)
    sparse[1, 1] = False  # not all padding, but nearest samples at 0 and 16 all are
    assert not padding_mask_valid(sparse)
    sparse[16, 16] = False
    assert padding_mask_valid(sparse)


def test_crops_far_outside_the_image_are_resampled():
    boxes = moving_boxes(30)
    boxes[:, 0] = -80  # the target (and the template crop around it) lies left of the image
    boxes[:, 2] = 10
    data = FakeDataset([make_sequence("out", np.ones(30), boxes), make_sequence("in", np.ones(30))])
    ds = TrackingSampler([data], sampler=SamplerConfig(samples_per_epoch=30), processing=plain(), with_info=True)
    outs = [ds[i] for i in range(30)]
    assert {o["info"]["sequence"] for o in outs} == {"in"}
    assert any(int(o["resampled"]) > 0 for o in outs)


# -- score negatives ------------------------------------------------------------------------------------------
def test_negatives_use_an_invisible_frame_with_the_centre_box():
    visible = np.ones(40, bool)
    visible[[5, 17, 33]] = False
    data = FakeDataset([make_sequence("occ", visible)])
    cfg = SamplerConfig(samples_per_epoch=20, mode="trident_pro", train_score=True, pos_prob=0.0)
    proc = plain(search_center_jitter=0.0, search_scale_jitter=0.0, flip_prob=0.0)
    ds = TrackingSampler([data], sampler=cfg, processing=proc, with_info=True)
    assert center_box(H, W).tolist() == [int(80 - 10), int(60 - 7.5), 20, 15]
    for i in range(20):
        out = ds[i]
        assert out["label"].item() == 0.0
        assert out["info"]["search_id"] in (5, 17, 33)
        assert out["info"]["search_box"] == center_box(H, W).tolist()
        x, y, w, h = out["search_anno"].double().numpy()
        np.testing.assert_allclose([x + w / 2, y + h / 2], (63 / 2) / 64, atol=1e-6)


def test_negatives_without_invisible_frames_come_from_another_draw_with_its_own_box(video):
    cfg = SamplerConfig(samples_per_epoch=30, mode="trident_pro", train_score=True, pos_prob=0.0)
    ds = TrackingSampler([video], sampler=cfg, processing=plain(), with_info=True)
    for i in range(30):
        out = ds[i]
        info = out["info"]
        assert out["label"].item() == 0.0
        seq = {s.name: s for s in video.sequences}[info["search_sequence"]]
        assert info["search_box"] == seq.boxes[info["search_id"]].tolist()


def test_positive_and_negative_mix(video):
    visible = np.ones(40, bool)
    visible[10:20] = False
    data = FakeDataset([make_sequence("occ", visible)])
    cfg = SamplerConfig(samples_per_epoch=200, mode="trident_pro", train_score=True, pos_prob=0.5)
    ds = TrackingSampler([data], sampler=cfg, processing=plain(search_size=32, template_size=16), with_info=True)
    outs = [ds[i] for i in range(200)]
    labels = np.array([o["label"].item() for o in outs])
    assert 0.38 < labels.mean() < 0.62
    for o, lab in zip(outs, labels):
        if lab == 1.0:
            assert visible[o["info"]["search_id"]]
        else:
            assert not visible[o["info"]["search_id"]]


# -- failures ------------------------------------------------------------------------------------------------
def _image_dataset(tmp_path, names_ok):
    sequences = []
    for name, ok in names_ok:
        path = tmp_path / f"{name}.jpg"
        if ok:
            cv2.imwrite(str(path), cv2.cvtColor(render(1, [50, 40, 30, 20]), cv2.COLOR_RGB2BGR))
        else:
            path.write_bytes(b"not a jpeg at all")
        sequences.append(Sequence(name, [path], [[50, 40, 30, 20]], [True]))
    return FakeDataset(sequences, name="images", is_video=False)


def test_unreadable_images_are_resampled_and_counted(tmp_path):
    data = _image_dataset(tmp_path, [("good", True), ("bad1", False), ("bad2", False)])
    ds = TrackingSampler([data], sampler=SamplerConfig(samples_per_epoch=30), processing=plain(), with_info=True)
    outs = [ds[i] for i in range(30)]
    assert {o["info"]["sequence"] for o in outs} == {"good"}
    counts = [int(o["resampled"]) for o in outs]
    assert sum(counts) > 15 and min(counts) == 0


def test_always_failing_dataset_raises_a_clear_error(tmp_path):
    data = _image_dataset(tmp_path, [("broken", False)])
    ds = TrackingSampler([data], sampler=SamplerConfig(samples_per_epoch=3, max_resample=7), processing=plain())
    with pytest.raises(SamplingError, match=r"after 7 failed draws.*broken\.jpg.*cannot read image"):
        ds[0]


def test_dataset_without_usable_sequences_raises_a_clear_error():
    data = FakeDataset([make_sequence("tiny", np.ones(10))])
    ds = TrackingSampler([data], sampler=SamplerConfig(samples_per_epoch=3, max_resample=5), processing=plain())
    with pytest.raises(SamplingError, match=r"tiny: unusable sequence"):
        ds[0]


def test_config_validation():
    with pytest.raises(ConfigError):
        SamplerConfig(mode="stark")
    with pytest.raises(ConfigError):
        SamplerConfig(pos_prob=1.5)
    with pytest.raises(ConfigError):
        ProcessingConfig(search_size=0)
    with pytest.raises(ConfigError):
        ProcessingConfig(flip_prob=-0.1)
    with pytest.raises(ConfigError):
        TrackingSampler([])


def test_online_template_from_the_template_gives_no_online_crop(video):
    """online_template='template': what a model without a score head sees when tracking; the
    samples hold no online_template (the model reuses the template) and keep everything else."""
    cfg = SamplerConfig(samples_per_epoch=30, online_template="template")
    ds = TrackingSampler([video], sampler=cfg, processing=plain(), with_info=True)
    for i in range(30):
        out = ds[i]
        assert set(out) == {"template", "search", "search_anno", "label", "resampled", "info"}
        base, same = out["info"]["template_ids"]
        search = out["info"]["search_id"]
        assert same == base < search
        assert decode_index(out["template"]) == base and decode_index(out["search"]) == search
        assert len(out["info"]["crop_flips"]) == 3 and out["info"]["crop_flips"][0] == out["info"]["crop_flips"][1]
    batch = torch.utils.data.default_collate([ds[i] for i in range(4)])
    assert "online_template" not in batch and batch["template"].shape == (4, 3, 32, 32)


def test_online_template_source_validation():
    with pytest.raises(ConfigError, match="online_template"):
        SamplerConfig(online_template="first")
    with pytest.raises(ConfigError, match="score head"):
        SamplerConfig(online_template="template", mode="trident_pro", train_score=True)
