"""Training samples: (template, online template, search) crops with the official sampling rules.

Reproduces the official ``TrackingSampler`` (spec §3.8) and ``MixformerProcessing`` in
``sequence`` mode (§3.9):

1. a dataset is drawn ∝ ``ratios``, a sequence uniformly; video sequences need more than
   2·(1 search + 2 templates) = 6 visible frames and at least 20 frames (drawn again within
   the same dataset otherwise), image datasets are always accepted;
2. frame ids by :func:`sample_frame_ids` (``causal`` or ``trident_pro``); image datasets use
   their one image three times; with ``train_score`` a negative search frame with p = 1 − pos_prob;
3. joint augmentation of the full frames, then for every crop: jittered box →
   :func:`geometry.crop_around` → padding-mask validity → GT box in the crop → per-crop
   augmentation (:mod:`.augment`).

Any failure (unusable sequence, unreadable frame, degenerate box, crop all padding) is
counted and the whole draw is repeated, as the official sampler does; ``resampled`` in the
output says how many draws failed before the sample, and ``max_resample`` failures in a row
raise :class:`SamplingError` naming the last one. Only this package's errors, OpenCV errors
and OS errors are treated as bad data; anything else is a bug and propagates.

**Determinism.** Everything random in ``sample(i)`` comes from
``np.random.default_rng([seed, epoch, i])``: a sample is a pure function of
(seed, epoch, index), whatever the DataLoader workers or the resume point. ``set_epoch``
must be called before the epoch's iterator is created (DataLoader workers receive a copy of
the dataset then; with ``persistent_workers`` index the dataset with ``(epoch, index)``
tuples instead, which ``__getitem__`` also accepts).

Deliberate differences from the official code: its global ``random``/``numpy``/``torch``
streams are replaced by the per-sample generator (same distributions, different numbers);
a crop that misses the image entirely is all padding, hence invalid (the official slicing
wraps around there — unreachable with the official jitters); ``causal`` is also allowed with
``train_score`` (the official refuses that combination).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Sequence as Seq

import cv2
import numpy as np
import torch

from ..errors import ConfigError, InputError, MixFormerError
from ..geometry import CropInfo, align_to, crop_around, crop_padding_mask
from .augment import apply_crop, apply_joint, flip_box, paste_lookalike, paste_occluder, roll_crop, roll_joint
from .sequence import Sequence, SequenceDataset

SAMPLER_MODES = ("causal", "trident_pro")
ONLINE_TEMPLATE_SOURCES = ("sampled", "template")
NUM_TEMPLATES = 2  # static template + online (dynamic) template
NUM_SEARCH = 1
MIN_VISIBLE = 2 * (NUM_SEARCH + NUM_TEMPLATES)  # a video needs MORE than this many visible frames
MIN_LENGTH = 20  # ... and at least this many frames
BACKBONE_STRIDE = 16  # the validity check's feature-map downsampling
GAP_INCREASE = 5  # causal sampling widens its windows by this much after a miss
# Loaded sequences kept per process, bounded by their total frame count (a frame path and its
# annotation take ~0.2 kB: ~40 MB): reading a sequence's listing and annotation files again for
# every sample took half of the sampling time on the synthetic training set.
SEQUENCE_CACHE_FRAMES = 200_000


class SequenceCache:
    """Least-recently-used loaded sequences, keyed by (dataset, index), bounded by total frames."""

    def __init__(self, max_frames: int = SEQUENCE_CACHE_FRAMES) -> None:
        self.max_frames = int(max_frames)
        self._items: OrderedDict[tuple[int, int], Sequence] = OrderedDict()
        self._frames = 0

    def get(self, key: tuple[int, int], load: Callable[[], Sequence]) -> Sequence:
        seq = self._items.get(key)
        if seq is not None:
            self._items.move_to_end(key)
            return seq
        seq = load()
        if len(seq) <= self.max_frames:
            self._items[key] = seq
            self._frames += len(seq)
            while self._frames > self.max_frames:
                _, dropped = self._items.popitem(last=False)
                self._frames -= len(dropped)
        return seq

    def __len__(self) -> int:
        return len(self._items)


class SamplingError(InputError):
    """No valid training sample could be drawn within ``max_resample`` attempts."""


class _Rejected(Exception):
    """A draw that cannot give a valid sample (invalid crop, unusable sequence, ...)."""


# -- configuration ----------------------------------------------------------------------------------
@dataclass
class ProcessingConfig:
    """Crop sizes, factors, jitters and augmentation probabilities (official defaults, B model)."""

    search_size: int = 288
    template_size: int = 128
    search_factor: float = 5.0
    template_factor: float = 2.0
    search_center_jitter: float = 4.5
    search_scale_jitter: float = 0.5
    # not official: this share of search crops has its centre jitter scaled by search_near_scale,
    # so most crops look like tracking's (target near the centre) while some still show far offsets
    search_near_prob: float = 0.0
    search_near_scale: float = 0.3
    # not official: this share of positive search crops gets a pasted copy of the target farther
    # from the centre (augment.paste_lookalike): a look-alike distractor the model must not take
    lookalike_paste_prob: float = 0.0
    # not official: this share of those copies is placed next to the target, partly in front of it
    # (a look-alike passing close by), instead of anywhere farther out
    lookalike_near_prob: float = 0.0
    # not official: this share of positive search crops gets a bar of background pasted across
    # the target (augment.paste_occluder), hiding part of it while the label keeps the full box
    occluder_paste_prob: float = 0.0
    # not official (ModelConfig.motion_input): the search crop gets 3 more channels, its difference to
    # the previous frame cropped in the same window (shifted onto it by the global translation: camera
    # pans cancel); pasted look-alikes and occluders are in both frames, standing still or, in
    # moving_paste_prob of the crops, moved by a few pixels (a look-alike that moves is not the target)
    motion_input: bool = False
    moving_paste_prob: float = 0.0
    template_center_jitter: float = 0.0
    template_scale_jitter: float = 0.0
    grayscale_prob: float = 0.05
    flip_prob: float = 0.5  # joint (full frame) and per-crop flips alike
    brightness_jitter: float = 0.2

    def __post_init__(self) -> None:
        for name in ("search_size", "template_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"ProcessingConfig.{name} must be a positive integer, got {value!r}")
        for name in ("search_factor", "template_factor"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ConfigError(f"ProcessingConfig.{name} must be positive, got {getattr(self, name)!r}")
        for name in ("search_center_jitter", "search_scale_jitter", "template_center_jitter",
                     "template_scale_jitter", "brightness_jitter", "search_near_scale"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ConfigError(f"ProcessingConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        if not isinstance(self.motion_input, bool):
            raise ConfigError(f"ProcessingConfig.motion_input must be true or false, got {self.motion_input!r}")
        for name in ("grayscale_prob", "flip_prob", "search_near_prob", "lookalike_paste_prob",
                     "lookalike_near_prob", "occluder_paste_prob", "moving_paste_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"ProcessingConfig.{name} must be in [0, 1], got {getattr(self, name)!r}")


@dataclass
class SamplerConfig:
    """Frame sampling: mode, window, epoch length, score negatives, resampling limit."""

    mode: str = "causal"  # 'causal' (stages 1-2) | 'trident_pro' (score-head stage)
    max_gap: int = 200
    samples_per_epoch: int = 60000
    train_score: bool = False  # draw negatives (label 0) with p = 1 - pos_prob
    pos_prob: float = 0.5
    max_resample: int = 100  # failed draws for one sample before giving up
    # 'sampled': the online template is cropped from its own sampled frame (official);
    # 'template': it is the template crop itself, which is what a model without a score head sees
    # when tracking (its online template never changes); samples then hold no online_template
    # and the model computes the template tokens once (one crop and a third of the tokens fewer)
    online_template: str = "sampled"

    def __post_init__(self) -> None:
        if self.mode not in SAMPLER_MODES:
            raise ConfigError(f"SamplerConfig.mode must be one of {SAMPLER_MODES}, got {self.mode!r}")
        if int(self.max_gap) < 1:
            raise ConfigError(f"SamplerConfig.max_gap must be >= 1, got {self.max_gap!r}")
        if int(self.samples_per_epoch) < 1:
            raise ConfigError(f"SamplerConfig.samples_per_epoch must be >= 1, got {self.samples_per_epoch!r}")
        if not 0.0 <= self.pos_prob <= 1.0:
            raise ConfigError(f"SamplerConfig.pos_prob must be in [0, 1], got {self.pos_prob!r}")
        if self.online_template not in ONLINE_TEMPLATE_SOURCES:
            raise ConfigError(f"SamplerConfig.online_template must be one of {ONLINE_TEMPLATE_SOURCES}, "
                              f"got {self.online_template!r}")
        if self.online_template == "template" and self.train_score:
            raise ConfigError("SamplerConfig.online_template='template' cannot train the score head "
                              "(it learns to choose online templates); use 'sampled'")
        if int(self.max_resample) < 1:
            raise ConfigError(f"SamplerConfig.max_resample must be >= 1, got {self.max_resample!r}")


# -- frame-id sampling ------------------------------------------------------------------------------
def sample_visible_id(
    visible: np.ndarray,
    rng: np.random.Generator,
    min_id: int | None = None,
    max_id: int | None = None,
    *,
    allow_invisible: bool = False,
    force_invisible: bool = False,
) -> int | None:
    """One frame id drawn uniformly from [min_id, max_id) (clamped to the sequence), None if none qualifies.

    Candidates are the visible frames, every frame (``allow_invisible``) or the invisible ones
    (``force_invisible``): the official ``_sample_visible_ids`` with ``num_ids=1``.
    """
    n = len(visible)
    lo = 0 if min_id is None or min_id < 0 else int(min_id)
    hi = n if max_id is None or max_id > n else int(max_id)
    if hi <= lo:
        return None
    if allow_invisible and not force_invisible:
        return lo + int(rng.integers(hi - lo))
    window = visible[lo:hi]
    candidates = np.flatnonzero(~window if force_invisible else window)
    if candidates.size == 0:
        return None
    return lo + int(candidates[rng.integers(candidates.size)])


def sample_frame_ids(
    visible: np.ndarray, mode: str, max_gap: int, rng: np.random.Generator, max_tries: int = 10_000
) -> tuple[list[int], int]:
    """Frame ids ``([template, online_template], search)`` of one video (spec §3.8).

    ``causal``: base = visible id in [1, len−1); prev = visible id in [base−max_gap−g, base);
    search = visible id in [base+1, base+max_gap+g); g grows by 5 after each miss. Returns
    ``([base, prev], search)``: the template is the *later* frame, the online template the
    earlier one, the search frame comes after both.
    ``trident_pro``: template1 and search = any visible frames; the dynamic template is any
    frame (invisible allowed) of [search, search+max_gap) if template1 >= search, else of
    [search−max_gap, search). Returns ``([template1, dynamic], search)``.
    """
    visible = np.asarray(visible, dtype=bool).reshape(-1)
    n = len(visible)
    if mode == "causal":
        gap = 0
        for _ in range(max_tries):
            base = sample_visible_id(visible, rng, NUM_TEMPLATES - 1, n - NUM_SEARCH)
            if base is None:
                raise _Rejected(f"no visible frame in [1, {n - 1}) for a causal base frame")
            prev = sample_visible_id(visible, rng, base - max_gap - gap, base)
            if prev is None:
                gap += GAP_INCREASE
                continue
            search = sample_visible_id(visible, rng, base + 1, base + max_gap + gap)
            gap += GAP_INCREASE
            if search is not None:
                return [base, prev], search
    elif mode == "trident_pro":
        for _ in range(max_tries):
            first = sample_visible_id(visible, rng)
            search = sample_visible_id(visible, rng)
            if first is None or search is None:
                raise _Rejected("no visible frame")
            if first >= search:
                lo, hi = search, search + max_gap
            else:
                lo, hi = search - max_gap, search
            dynamic = sample_visible_id(visible, rng, lo, hi, allow_invisible=True)
            if dynamic is not None:
                return [first, dynamic], search
    else:
        raise ConfigError(f"sampler mode must be one of {SAMPLER_MODES}, got {mode!r}")
    raise _Rejected(f"no {mode} frame triplet found in {max_tries} tries")


def sequence_usable(sequence: Sequence, is_video: bool) -> bool:
    """Official acceptance rule: videos need > 6 visible frames and >= 20 frames; images always pass."""
    if not is_video:
        return len(sequence) >= 1
    return int(np.count_nonzero(sequence.visible)) > MIN_VISIBLE and len(sequence) >= MIN_LENGTH


def center_box(height: int, width: int) -> np.ndarray:
    """The fake box of a negative video frame: x=int(W/2−W/16), y=int(H/2−H/16), w=int(W/8), h=int(H/8)."""
    cx, cy, w, h = width / 2, height / 2, width / 8, height / 8
    return np.array([int(cx - w / 2), int(cy - h / 2), int(w), int(h)], dtype=np.float64)


# -- box geometry -------------------------------------------------------------------------------------
def jittered_box(
    box_xywh: Seq[float], rng: np.random.Generator, center_jitter: float, scale_jitter: float
) -> np.ndarray:
    """Official ``_get_jittered_box``: size ``wh·exp(N(0,1)·scale_jitter)`` per dimension, centre
    moved by ``sqrt(w'h')·center_jitter·(U(0,1) − 0.5)`` per axis. Always draws 2 normals and 2
    uniforms, so zero jitter (templates) leaves the box unchanged but consumes the stream alike."""
    box = np.asarray(box_xywh, dtype=np.float64).reshape(4)
    size = box[2:] * np.exp(rng.standard_normal(2) * scale_jitter)
    with np.errstate(invalid="ignore"):
        max_offset = np.sqrt(size[0] * size[1]) * center_jitter
    center = box[:2] + 0.5 * box[2:] + max_offset * (rng.random(2) - 0.5)
    return np.concatenate([center - 0.5 * size, size])


def box_in_crop(
    gt_xywh: Seq[float], jittered_xywh: Seq[float], resize_factor: float | CropInfo, out_size: int
) -> np.ndarray:
    """GT box in a crop taken around ``jittered_xywh``, normalised by the crop size (official
    ``transform_image_to_crop``): centre = (S−1)/2 + (gt_centre − jit_centre)·rf, size = gt_wh·rf,
    then / S. ``resize_factor`` is ``out_size / side`` (or the crop's :class:`CropInfo`)."""
    rf = resize_factor.resize_factor if isinstance(resize_factor, CropInfo) else float(resize_factor)
    gt = np.asarray(gt_xywh, dtype=np.float64).reshape(4)
    jit = np.asarray(jittered_xywh, dtype=np.float64).reshape(4)
    center = (out_size - 1) / 2 + ((gt[:2] + 0.5 * gt[2:]) - (jit[:2] + 0.5 * jit[2:])) * rf
    size = gt[2:] * rf
    return np.concatenate([center - 0.5 * size, size]) / out_size


def padding_mask_valid(mask: np.ndarray, stride: int = BACKBONE_STRIDE) -> bool:
    """Official validity check on a crop's padding mask (True = padded; flipped with the crop):
    not all padding, and its nearest-neighbour downsample to (S//stride)² not all padding either."""
    if mask.all():
        return False
    size = mask.shape[0]
    feat = size // stride
    if feat < 1:
        return True  # F.interpolate to size 0 would fail; nothing left to check
    # torch nearest: src = floor(dst * (in / out)) with a float32 scale
    idx = np.minimum(np.floor(np.arange(feat, dtype=np.float32) * np.float32(size / feat)).astype(np.int64), size - 1)
    return not mask[np.ix_(idx, idx)].all()


# -- the dataset -------------------------------------------------------------------------------------
class TrackingSampler(torch.utils.data.Dataset):
    """Random training samples from several sequence datasets (a ``torch`` map-style dataset).

    ``sampler[i]`` -> dict of tensors: ``template`` / ``online_template`` (3, T, T) and
    ``search`` (3, S, S) float32, ImageNet-normalised (with ``processing.motion_input`` (6, S, S),
    channels 3-5 the search crop minus the previous frame's crop in the same window, aligned to it);
    ``search_anno`` (4,) float32, the normalised x, y, w, h of the target in the search crop;
    ``label`` () float32 (1 positive, 0 negative); ``resampled`` () int64, failed draws before this sample. With
    ``with_info=True`` an ``info`` dict (dataset, sequence and frame ids, boxes) is added.
    ``ratios`` None weighs the datasets by their number of sequences (the official default).
    """

    def __init__(
        self,
        datasets: list[SequenceDataset],
        ratios: list[float] | None = None,
        sampler: SamplerConfig | None = None,
        processing: ProcessingConfig | None = None,
        seed: int = 0,
        *,
        with_info: bool = False,
    ) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ConfigError("TrackingSampler needs at least one dataset")
        for k, ds in enumerate(self.datasets):
            if len(ds) < 1:
                raise ConfigError(f"dataset {k} ({getattr(ds, 'name', '?')!r}) has no sequences")
        if ratios is None:
            ratios = [float(len(ds)) for ds in self.datasets]
        ratios = [float(r) for r in ratios]
        if len(ratios) != len(self.datasets):
            raise ConfigError(f"{len(ratios)} ratios for {len(self.datasets)} datasets")
        if any(not (math.isfinite(r) and r >= 0) for r in ratios) or sum(ratios) <= 0:
            raise ConfigError(f"dataset ratios must be >= 0 with a positive sum, got {ratios}")
        total = sum(ratios)
        self.probs = np.array([r / total for r in ratios], dtype=np.float64)
        self.sampler = sampler if sampler is not None else SamplerConfig()
        self.processing = processing if processing is not None else ProcessingConfig()
        if int(seed) < 0:
            raise ConfigError(f"seed must be >= 0, got {seed}")
        self.seed = int(seed)
        self.epoch = 0
        self.with_info = with_info
        self._is_video = [bool(getattr(ds, "is_video", True)) for ds in self.datasets]
        self._sequences = SequenceCache()

    # -- torch Dataset ------------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        if int(epoch) < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return int(self.sampler.samples_per_epoch)

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, Any]:
        if isinstance(index, tuple):
            epoch, index = index
        else:
            epoch = self.epoch
        return self.sample(int(index), int(epoch))

    def sample(self, index: int, epoch: int | None = None) -> dict[str, Any]:
        """Sample ``index`` of ``epoch`` (default: the current one): a pure function of (seed, epoch, index)."""
        epoch = self.epoch if epoch is None else int(epoch)
        if index < 0 or epoch < 0:
            raise IndexError(f"sample index {index} / epoch {epoch} must be >= 0")
        rng = np.random.default_rng([self.seed, epoch, index])
        failures = [0, ""]  # count, last reason (shared with the sequence picker)
        while True:
            try:
                out = self._draw(rng, failures)
            except SamplingError:
                raise
            except (_Rejected, MixFormerError, cv2.error, OSError) as exc:
                self._fail(failures, f"{type(exc).__name__}: {exc}", index, epoch)
                continue
            out["resampled"] = torch.tensor(failures[0], dtype=torch.int64)
            return out

    # -- internals ------------------------------------------------------------------------------------
    def _fail(self, failures: list, reason: str, index: int | None = None, epoch: int | None = None) -> None:
        failures[0] += 1
        failures[1] = reason
        if failures[0] >= self.sampler.max_resample:
            where = "" if index is None else f" for sample {index} of epoch {epoch} (seed {self.seed})"
            raise SamplingError(
                f"TrackingSampler: no valid sample{where} after {failures[0]} failed draws; "
                f"last failure: {reason}"
            )

    def _pick_sequence(self, rng: np.random.Generator, failures: list) -> tuple[int, int, Sequence]:
        """Dataset ∝ ratios, then sequences drawn uniformly (within that dataset) until one is usable."""
        k = int(rng.choice(len(self.datasets), p=self.probs))
        ds = self.datasets[k]
        while True:
            j = int(rng.integers(len(ds)))
            try:
                seq = self._sequences.get((k, j), lambda: ds[j])
            except (MixFormerError, OSError) as exc:
                self._fail(failures, f"{_name(ds)}[{j}]: {type(exc).__name__}: {exc}")
                continue
            if sequence_usable(seq, self._is_video[k]):
                return k, j, seq
            self._fail(
                failures,
                f"{_name(ds)}/{seq.name}: unusable sequence ({int(np.count_nonzero(seq.visible))} visible of "
                f"{len(seq)} frames; need > {MIN_VISIBLE} visible and >= {MIN_LENGTH} frames)",
            )

    def _draw(self, rng: np.random.Generator, failures: list) -> dict[str, Any]:
        cfg, proc = self.sampler, self.processing
        k, j, seq = self._pick_sequence(rng, failures)
        if self._is_video[k]:
            template_ids, search_id = sample_frame_ids(seq.visible, cfg.mode, cfg.max_gap, rng)
        else:
            template_ids, search_id = [0] * NUM_TEMPLATES, 0
        if cfg.online_template == "template":
            template_ids = [template_ids[0]] * NUM_TEMPLATES
        frames: dict[tuple[int, int, int], np.ndarray] = {}  # each frame read once per draw

        def frame(key: tuple[int, int, int], sequence: Sequence) -> np.ndarray:
            if key not in frames:
                frames[key] = sequence.read_frame(key[2])
            return frames[key]

        label = 1.0
        search_seq, search_key = seq, (k, j, search_id)
        search_box: np.ndarray | None = None
        if cfg.train_score and not rng.random() < cfg.pos_prob:
            label = 0.0
            neg = sample_visible_id(seq.visible, rng, force_invisible=True) if self._is_video[k] else None
            if neg is not None:  # a frame of the same video where the target is not visible
                search_key = (k, j, neg)
                h, w = frame(search_key, seq).shape[:2]
                search_box = center_box(h, w)
            else:  # any frame of a random sequence, with its own box
                k2, j2, seq2 = self._pick_sequence(rng, failures)
                idx = sample_visible_id(seq2.visible, rng, allow_invisible=True) if self._is_video[k2] else 0
                search_seq, search_key = seq2, (k2, j2, idx)
        if search_box is None:
            search_box = _box(search_seq, search_key[2])

        joint = roll_joint(rng, proc.grayscale_prob, proc.flip_prob)
        jointed: dict[tuple[int, int, int], np.ndarray] = {}

        def prepared(key: tuple[int, int, int], sequence: Sequence, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """The frame after the joint transform (computed once per frame) and the box in it."""
            if key not in jointed:
                jointed[key] = apply_joint(frame(key, sequence), box, joint)[0]
            image = jointed[key]
            return image, (flip_box(box, image.shape[1]) if joint.flip else np.asarray(box, dtype=np.float64))

        out: dict[str, Any] = {}
        crop_flips: list[bool] = []
        crops = [("template", seq, (k, j, template_ids[0]), _box(seq, template_ids[0]), "template")]
        if cfg.online_template == "sampled":
            crops.append(("online_template", seq, (k, j, template_ids[1]), _box(seq, template_ids[1]), "template"))
        crops.append(("search", search_seq, search_key, search_box, "search"))
        for name, sequence, key, box, kind in crops:
            image, box_j = prepared(key, sequence, box)
            if kind == "template":
                factor, size = proc.template_factor, proc.template_size
                cj, sj = proc.template_center_jitter, proc.template_scale_jitter
            else:
                factor, size = proc.search_factor, proc.search_size
                cj, sj = proc.search_center_jitter, proc.search_scale_jitter
                # drawn only when enabled, so official configs keep their random stream
                if proc.search_near_prob > 0 and rng.random() < proc.search_near_prob:
                    cj *= proc.search_near_scale
            jit = jittered_box(box_j, rng, cj, sj)
            where = f"{name} crop of {_name(self.datasets[key[0]])}/{sequence.name} frame {key[2]}"
            try:
                crop, info = crop_around(image, jit, factor, size)
            except InputError as exc:
                raise _Rejected(f"{where}: {exc}") from None
            anno = box_in_crop(box_j, jit, info, size)
            mask = crop_padding_mask(info, size)
            previous = None
            if kind == "search" and proc.motion_input:  # the first frame's previous frame is itself
                previous_frame = prepared((key[0], key[1], max(key[2] - 1, 0)), sequence, box)[0]
                crop = np.ascontiguousarray(crop)
                previous = align_to(crop_around(previous_frame, jit, factor, size)[0], crop)
                unpasted = crop.copy()
            # drawn only when enabled (official configs keep their random stream); never on negatives
            if (kind == "search" and label > 0 and proc.lookalike_paste_prob > 0
                    and rng.random() < proc.lookalike_paste_prob):
                crop = np.ascontiguousarray(crop)
                near = proc.lookalike_near_prob > 0 and rng.random() < proc.lookalike_near_prob
                paste_lookalike(crop, anno, rng, padding=mask, near=near)
            if (kind == "search" and label > 0 and proc.occluder_paste_prob > 0
                    and rng.random() < proc.occluder_paste_prob):
                crop = np.ascontiguousarray(crop)
                paste_occluder(crop, anno, rng, padding=mask)
            roll = roll_crop(rng, proc.brightness_jitter, proc.flip_prob)
            crop_flips.append(roll.flip)
            if not padding_mask_valid(mask[:, ::-1] if roll.flip else mask):
                raise _Rejected(f"{where}: the crop is (almost) all padding")
            if previous is not None:  # pasted things are in the previous frame too
                previous = np.array(previous)
                ys, xs = np.nonzero(np.any(crop != unpasted, axis=-1))
                if ys.size and proc.moving_paste_prob > 0 and rng.random() < proc.moving_paste_prob:
                    step = rng.uniform(2.0, 8.0) * size / 112  # pixels of a 112 px crop
                    angle = rng.uniform(0.0, 2.0 * math.pi)
                    py, px = ys - int(round(step * math.sin(angle))), xs - int(round(step * math.cos(angle)))
                    inside = (py >= 0) & (py < size) & (px >= 0) & (px < size)
                    previous[py[inside], px[inside]] = crop[ys[inside], xs[inside]]
                else:
                    previous[ys, xs] = crop[ys, xs]
                previous = apply_crop(previous, anno, roll)[0]
            tensor, anno = apply_crop(crop, anno, roll)
            out[name] = tensor if previous is None else torch.cat([tensor, tensor - previous])
            if name == "search":
                out["search_anno"] = torch.from_numpy(anno.astype(np.float32))
        if cfg.online_template == "template":  # no online_template: the model reuses the template
            crop_flips.insert(1, crop_flips[0])
        out["label"] = torch.tensor(label, dtype=torch.float32)
        if self.with_info:
            out["info"] = {
                "dataset": _name(self.datasets[k]),
                "sequence": seq.name,
                "template_ids": list(template_ids),
                "search_id": int(search_key[2]),
                "search_dataset": _name(self.datasets[search_key[0]]),
                "search_sequence": search_seq.name,
                "search_box": [float(v) for v in search_box],
                "joint_flip": joint.flip,
                "grayscale": joint.grayscale,
                "crop_flips": crop_flips,  # template, online_template, search
            }
        return out


def _name(ds: Any) -> str:
    return str(getattr(ds, "name", type(ds).__name__))


def _box(sequence: Sequence, index: int) -> np.ndarray:
    """Box of frame ``index`` (NaN when the sequence has no box for it -> the draw fails later)."""
    if index < len(sequence.boxes):
        return sequence.boxes[index]
    return np.full(4, np.nan)
