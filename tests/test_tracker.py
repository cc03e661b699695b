"""Tracker behaviour beyond the official trace: caching policy, API contract, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mixformerv2 import ConfigError, InputError, ModelConfig, TrackerConfig, Tracker, build_model
from mixformerv2.tracking.tracker import default_tracker_config

TINY = ModelConfig(embed_dim=32, depth=2, num_heads=2, mlp_ratio=2, template_size=32, search_size=64, feat_sz=16)


def _frames(n=12, h=90, w=120, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for _ in range(n)]


@pytest.fixture()
def model():
    torch.manual_seed(0)
    return build_model(TINY).eval()


class CountingModel(torch.nn.Module):
    """Wraps a model and counts template encodings and steps."""

    def __init__(self, model):
        super().__init__()
        self.inner, self.config, self.encodes, self.steps = model, model.config, 0, 0

    def encode_templates(self, *args):
        self.encodes += 1
        return self.inner.encode_templates(*args)

    def step(self, *args, **kw):
        self.steps += 1
        return self.inner.step(*args, **kw)


def test_templates_are_encoded_only_at_init_and_when_the_online_template_changes(model):
    counting = CountingModel(model)
    # threshold 0 accepts every frame as a candidate, so every update swaps the online template
    tracker = Tracker(counting, TrackerConfig(update_interval=3, score_threshold=0.0), runtime="fp32")
    frames = _frames(10)
    tracker.init(frames[0], (40, 30, 20, 16))
    results = [tracker.track(f) for f in frames[1:]]
    replaced = [r for r in results if r.online_template_replaced]
    assert len(replaced) == 3
    # the online template after frame k*3 is the best candidate of frames (k-1)*3+1 .. k*3
    assert [(r.online_template_frame - 1) // 3 for r in replaced] == [0, 1, 2]
    assert counting.steps == 9
    assert counting.encodes == 1 + len(replaced)


def test_no_candidate_keeps_initial_template_without_reencoding(model):
    counting = CountingModel(model)
    tracker = Tracker(counting, TrackerConfig(update_interval=2, score_threshold=1.0), runtime="fp32")  # none qualifies
    frames = _frames(7)
    tracker.init(frames[0], (40, 30, 20, 16))
    results = [tracker.track(f) for f in frames[1:]]
    assert all(r.online_template_frame == 0 and not r.template_updated for r in results)
    assert sum(r.online_template_replaced for r in results) == 3
    assert counting.encodes == 1  # reverting to the template already in use costs nothing


def test_opencv_contract_and_result_fields(model):
    tracker = Tracker(model)
    frames = _frames(3)
    tracker.init(frames[0], (40, 30, 20, 16))
    ok, box = tracker.update(frames[1])
    assert ok is True and len(box) == 4 and all(isinstance(v, float) for v in box)
    r = tracker.track(frames[2])
    assert 0.0 <= r.score <= 1.0 and r.crop is not None and r.crop.side >= 1
    h, w = frames[0].shape[:2]
    x, y, bw, bh = r.box
    assert 0 <= x <= w - 10 and 0 <= y <= h - 10 and bw >= 10 and bh >= 10


def test_tracking_is_deterministic_and_reinit_resets(model):
    frames = _frames(6)
    tracker = Tracker(model)
    tracker.init(frames[0], (40, 30, 20, 16))
    first = [tracker.track(f).box for f in frames[1:]]
    tracker.init(frames[0], (40, 30, 20, 16))
    again = [tracker.track(f).box for f in frames[1:]]
    assert first == again
    assert tracker.frame_id == 5


def test_search_buffers_are_reused_across_frames(model):
    frames = _frames(5)
    tracker = Tracker(model, runtime="fp32")
    tracker.init_targets(frames[0], [(40, 30, 20, 16), (10, 10, 30, 20)])
    tracker.track_targets(frames[1])
    crops, search = tracker._search_u8, tracker._search
    boxes = [r.box for f in frames[2:] for r in tracker.track_targets(f)]
    assert tracker._search_u8 is crops and tracker._search is search  # no per-frame allocation
    assert search.shape == (2, 3, TINY.search_size, TINY.search_size)
    tracker.init_targets(frames[0], [(40, 30, 20, 16)])
    tracker.track_targets(frames[1])
    assert tracker._search.shape[0] == 1  # a new target count gets new buffers
    again = Tracker(model, runtime="fp32")  # a fresh tracker gives the same boxes
    again.init_targets(frames[0], [(40, 30, 20, 16), (10, 10, 30, 20)])
    again.track_targets(frames[1])
    assert [r.box for f in frames[2:] for r in again.track_targets(f)] == boxes


def test_motion_input_feeds_the_crop_minus_the_previous_frame_in_the_same_window():
    """With motion_input the network gets, per target, the search crop and its difference to the
    previous frame cropped around the same (pre-update) box and shifted onto it (geometry.align_to);
    the tracker keeps its own copy of the previous frame, so a caller reusing one frame buffer
    changes nothing."""
    from mixformerv2.geometry import align_to, crop_around

    torch.manual_seed(0)
    model = build_model(TINY.replace(motion_input=True)).eval()
    torch.nn.init.normal_(model.backbone.motion_embed.proj.weight, std=0.2)  # as if trained
    frames, boxes = _frames(6), [(40, 30, 20, 16), (10, 10, 30, 20)]
    tracker = Tracker(model, runtime="fp32")
    seen = []
    step = tracker.runtime.step
    tracker.runtime.step = lambda search, cache: (seen.append(search.copy()), step(search, cache))[1]
    tracker.init_targets(frames[0], boxes)
    states, results = [], []
    for frame in frames[1:]:
        states.append(tracker.boxes)
        results.append([r.box for r in tracker.track_targets(frame)])

    def crop(frame, box):
        return crop_around(frame, box, tracker.config.search_factor, TINY.search_size)[0]

    assert seen[0].shape == (2, 6, TINY.search_size, TINY.search_size)
    for k, (search, state) in enumerate(zip(seen, states)):
        for i, box in enumerate(state):
            now = crop(frames[k + 1], box)
            before = align_to(crop(frames[k], box), now)
            now, before = Tracker._normalise(now[None])[0], Tracker._normalise(before[None])[0]
            np.testing.assert_array_equal(search[i, :3], now)
            np.testing.assert_allclose(search[i, 3:], now - before, atol=1e-6, rtol=0)
    reused = np.empty_like(frames[0])
    again = Tracker(model, runtime="fp32")
    np.copyto(reused, frames[0])
    again.init_targets(reused, boxes)
    got = []
    for frame in frames[1:]:
        np.copyto(reused, frame)
        got.append([r.box for r in again.track_targets(reused)])
    assert got == results
    still = Tracker(model, runtime="fp32")  # a still frame: zero difference
    still.runtime.step = lambda search, cache: (seen.append(search.copy()), step(search, cache))[1]
    still.init_targets(frames[0], boxes)
    still.track_targets(frames[0])
    assert not seen[-1][:, 3:].any()


def test_model_without_score_head_never_updates(model):
    plain = build_model(TINY.replace(score_head=False)).eval()
    tracker = Tracker(plain, TrackerConfig(update_interval=1))
    frames = _frames(4)
    tracker.init(frames[0], (40, 30, 20, 16))
    results = [tracker.track(f) for f in frames[1:]]
    assert all(np.isnan(r.score) and r.online_template_frame == 0 for r in results)


class ScriptedScores(CountingModel):
    """The model's boxes with scores from a script (one logit per step, repeated)."""

    def __init__(self, model, logits):
        super().__init__(model)
        self.logits = list(logits)

    def step(self, *args, **kw):
        out = super().step(*args, **kw)
        return {**out, "pred_scores": torch.full_like(out["pred_scores"], self.logits[(self.steps - 1) % len(self.logits)])}


def test_hold_below_keeps_the_last_box_while_the_score_is_low(model):
    logits = [3.0, -3.0, -3.0, 3.0, -1.0, 3.0]  # scores 0.95, 0.05, 0.05, 0.95, 0.27, 0.95
    frames = _frames(len(logits) + 1)
    results = {}
    for hold in (None, 0.3):
        tracker = Tracker(ScriptedScores(model, logits), TrackerConfig(hold_below=hold), runtime="fp32")
        tracker.init(frames[0], (40, 30, 20, 16))
        results[hold] = [tracker.track(f) for f in frames[1:]]
    free, held = results[None], results[0.3]
    assert not any(r.held for r in free)
    assert [r.held for r in held] == [False, True, True, False, True, False]
    boxes = [(40.0, 30.0, 20.0, 16.0)] + [r.box for r in held]
    for i, r in enumerate(held):
        assert (r.box == boxes[i]) == r.held  # held: the previous box; else the network moved it
    assert held[0].box == free[0].box  # the same until the first hold
    tracker.config = tracker.config.replace(hold_below=None)  # switched off: boxes move again
    assert tracker.track(frames[1]).box != held[-1].box


def test_max_scale_change_limits_the_size_step(model):
    frames = _frames(10, h=240, w=320)
    first = (140.0, 100.0, 40.0, 30.0)
    steps = {}
    for limit in (None, 1.02):
        tracker = Tracker(model, TrackerConfig(max_scale_change=limit), runtime="fp32")
        tracker.init(frames[0], first)
        boxes = [first] + [tracker.track(f).box for f in frames[1:]]
        steps[limit] = [max(abs(np.log(b[2] / a[2])), abs(np.log(b[3] / a[3]))) for a, b in zip(boxes, boxes[1:])]
    assert max(steps[None]) > np.log(1.1)  # an untrained model's sizes jump
    assert max(steps[1.02]) <= np.log(1.02) + 1e-12  # (the centre is kept: test_geometry)


def test_hold_below_needs_a_score_head(model):
    plain = build_model(TINY.replace(score_head=False)).eval()
    with pytest.raises(ConfigError, match="hold_below=0.2 needs a score, but this model has no score head"):
        Tracker(plain, TrackerConfig(hold_below=0.2))
    tracker = Tracker(plain)
    with pytest.raises(ConfigError, match="no score head"):
        tracker.config = tracker.config.replace(hold_below=0.5)
    assert tracker.config.hold_below is None


def test_dataset_settings_and_defaults(model):
    from mixformerv2 import get_preset

    b = get_preset("mixformerv2-b")
    assert default_tracker_config(b.model) is b.tracker
    assert default_tracker_config(TINY) == TrackerConfig()
    tracker = Tracker(model, b.tracker, dataset="GOT10K_TEST")
    assert (tracker.config.update_interval, tracker.config.search_factor) == (10, 5.0)


def test_errors(model):
    tracker = Tracker(model)
    frame = _frames(1)[0]
    with pytest.raises(RuntimeError, match="init"):
        tracker.track(frame)
    for bad in [(1, 2, 0, 5), (1, 2, -3, 5), (float("nan"), 2, 3, 4), (500, 500, 10, 10), (1, 2, 3)]:
        with pytest.raises(InputError):
            tracker.init(frame, bad)
    with pytest.raises(InputError):
        tracker.init(np.zeros((0, 0, 3), np.uint8), (1, 2, 3, 4))
    with pytest.raises(InputError):
        tracker.init(frame.astype(np.float32), (1, 2, 3, 4))
    tracker.init_targets(frame, [(10, 10, 20, 20), (50, 40, 20, 20)])
    with pytest.raises(RuntimeError, match="track_targets"):
        tracker.track(frame)
    assert len(tracker.track_targets(frame)) == 2
