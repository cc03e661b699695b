"""The official training augmentations (spec §3.9), as small functions with an explicit RNG.

Two stages, as in the official ``MixformerProcessing``:

* **joint** (on the full frames, one roll shared by every frame of a sample — both templates
  and the search frame): grayscale with p = 0.05 (``cv2.COLOR_RGB2GRAY`` replicated to three
  channels), then horizontal flip with p = 0.5 and boxes ``x' = (W - 1) - x - w``;
* **per crop** (an independent roll for every crop): brightness factor U(0.8, 1.2) applied
  as ``clamp(pixel * (factor / 255), 0, 1)`` in float32, horizontal flip with p = 0.5 and
  normalised boxes ``x' = 1 - x - w``, then ImageNet normalisation -> float32 (3, S, S).

Every random decision is drawn from the ``np.random.Generator`` passed in, so a sample is
a pure function of its generator's seed. Frames are uint8 RGB (H, W, 3); boxes are x, y, w, h.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
import torch
from torch import Tensor

from ..tracking.tracker import IMAGENET_MEAN, IMAGENET_STD

_MEAN = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)
_STD = torch.tensor(IMAGENET_STD, dtype=torch.float32)
_MEAN_NP = np.array(IMAGENET_MEAN, dtype=np.float32).reshape(3, 1, 1)
_STD_NP = np.array(IMAGENET_STD, dtype=np.float32).reshape(3, 1, 1)


# -- joint transform (full frames) -------------------------------------------------------------------
@dataclass(frozen=True)
class JointRoll:
    """The joint transform's decisions, shared by all frames of one sample."""

    grayscale: bool = False
    flip: bool = False


def roll_joint(rng: np.random.Generator, grayscale_prob: float = 0.05, flip_prob: float = 0.5) -> JointRoll:
    """Draw the joint transform (always two draws, so the stream does not depend on the probabilities)."""
    gray = rng.random() < grayscale_prob
    flip = rng.random() < flip_prob
    return JointRoll(bool(gray), bool(flip))


def to_grayscale(frame: np.ndarray) -> np.ndarray:
    """RGB uint8 -> its luma (``cv2.COLOR_RGB2GRAY``) replicated to three channels."""
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return cv2.merge((gray, gray, gray))


def flip_frame(frame: np.ndarray) -> np.ndarray:
    """Horizontally mirrored frame: a view (no copy); ``geometry.crop_around`` accepts it."""
    return frame[:, ::-1]


def flip_box(box_xywh: Sequence[float], width: int) -> np.ndarray:
    """Box of a frame ``width`` px wide after a horizontal flip: ``x' = (W - 1) - x - w``."""
    x, y, w, h = np.asarray(box_xywh, dtype=np.float64).reshape(4)
    return np.array([(width - 1) - x - w, y, w, h], dtype=np.float64)


def apply_joint(frame: np.ndarray, box_xywh: Sequence[float], roll: JointRoll) -> tuple[np.ndarray, np.ndarray]:
    """Apply a joint roll to one full frame and its box (grayscale first, then flip)."""
    box = np.asarray(box_xywh, dtype=np.float64).reshape(4)
    if roll.grayscale:
        frame = to_grayscale(frame)
    if roll.flip:
        box = flip_box(box, frame.shape[1])
        frame = flip_frame(frame)
    return frame, box


# -- per-crop transform -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CropRoll:
    """One crop's decisions: brightness factor and horizontal flip."""

    brightness: float = 1.0
    flip: bool = False


def roll_crop(rng: np.random.Generator, brightness_jitter: float = 0.2, flip_prob: float = 0.5) -> CropRoll:
    """Brightness factor U(max(0, 1 - j), 1 + j) and flip with ``flip_prob`` (always two draws)."""
    factor = rng.uniform(max(0.0, 1.0 - brightness_jitter), 1.0 + brightness_jitter)
    flip = rng.random() < flip_prob
    return CropRoll(float(factor), bool(flip))


def flip_box_normalized(box_xywh: Sequence[float]) -> np.ndarray:
    """Normalised box after a horizontal flip of its crop: ``x' = 1 - x - w``."""
    x, y, w, h = np.asarray(box_xywh, dtype=np.float64).reshape(4)
    return np.array([1.0 - x - w, y, w, h], dtype=np.float64)


def crop_to_tensor(crop: np.ndarray, roll: CropRoll = CropRoll()) -> Tensor:
    """uint8 RGB crop (S, S, 3) -> normalised float32 (3, S, S), as the official pipeline.

    ``clamp(float(pixel) * float32(factor / 255), 0, 1)``, flip, ``(x - mean) / std``: the
    same float32 operations as ``ToTensorAndJitter`` + ``RandomHorizontalFlip_Norm`` +
    ``Normalize``, so the values are bit-identical (tested). Done in NumPy on one CHW copy:
    small torch ops in the main process pay for waking torch's thread pool (milliseconds
    each on a busy 2-core machine), NumPy's do not.
    """
    chw = crop.transpose(2, 0, 1)
    if roll.flip:
        chw = chw[:, :, ::-1]
    x = np.array(chw, dtype=np.float32, order="C")  # the one copy: transpose + flip + convert
    x *= np.float32(roll.brightness / 255.0)
    np.clip(x, 0.0, 1.0, out=x)
    x -= _MEAN_NP
    x /= _STD_NP
    return torch.from_numpy(x)


def apply_crop(
    crop: np.ndarray, box_norm_xywh: Sequence[float], roll: CropRoll
) -> tuple[Tensor, np.ndarray]:
    """Per-crop transform of a crop and its normalised box -> (tensor (3, S, S), box)."""
    box = np.asarray(box_norm_xywh, dtype=np.float64).reshape(4)
    if roll.flip:
        box = flip_box_normalized(box)
    return crop_to_tensor(crop, roll), box


def paste_lookalike(
    crop: np.ndarray, box_norm_xywh: Sequence[float], rng: np.random.Generator,
    padding: np.ndarray | None = None, tries: int = 12, near: bool = False,
) -> np.ndarray | None:
    """Not official: paste a copy of the target (its box region, resized by U(0.8, 1.25) and
    feathered at the border) into the crop, farther from the crop centre than the target and not
    overlapping it, nor (where ``padding``, True = outside the image, is given) on padding, so that
    the model learns to take, of two look-alikes, the one nearer the centre
    (where tracking puts the target). ``near``: the copy is placed next to the target instead
    (centres 0.6-1.2 mean sizes apart, still farther from the crop centre), in front of up to a
    third of its box, as a look-alike passing close by (the label stays the target's full box).
    ``crop`` (uint8, S x S x 3) is changed in place; returns the copy's box in pixels (x, y, w, h),
    or None when the target is too small or no place fits.
    """
    size = crop.shape[0]
    x, y, w, h = (float(v) * size for v in box_norm_xywh)
    x0, y0 = max(0, int(np.floor(x))), max(0, int(np.floor(y)))
    x1, y1 = min(size, int(np.ceil(x + w))), min(size, int(np.ceil(y + h)))
    if x1 - x0 < 4 or y1 - y0 < 4 or (x1 - x0) * (y1 - y0) < 0.7 * w * h:
        return None  # tiny, or mostly outside the crop
    scale = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
    pw, ph = max(4, round((x1 - x0) * scale)), max(4, round((y1 - y0) * scale))
    if pw >= size or ph >= size:
        return None
    centre = (size - 1) / 2.0
    target_c = np.array([x + w / 2.0, y + h / 2.0])
    target_dist = float(np.hypot(*(target_c - centre)))
    margin = (0.1 if near else 0.5) * float(np.sqrt(pw * ph))
    mean_size = (float(np.sqrt(w * h)) + float(np.sqrt(pw * ph))) / 2.0
    for _ in range(tries):
        if near:  # beside the target, over at most a third of it
            angle, distance = rng.uniform(0.0, 2.0 * np.pi), rng.uniform(0.6, 1.2) * mean_size
            px = int(round(target_c[0] + distance * np.cos(angle) - pw / 2.0))
            py = int(round(target_c[1] + distance * np.sin(angle) - ph / 2.0))
            if not (0 <= px <= size - pw and 0 <= py <= size - ph):
                continue
            hidden = _overlap_area((px, py, pw, ph), (x, y, w, h))
            apart = hidden <= w * h / 3.0
        else:  # anywhere, not over the target
            px, py = int(rng.integers(0, size - pw + 1)), int(rng.integers(0, size - ph + 1))
            apart = abs(px + pw / 2.0 - target_c[0]) >= (pw + w) / 2.0 or abs(py + ph / 2.0 - target_c[1]) >= (ph + h) / 2.0
        copy_c = np.array([px + pw / 2.0, py + ph / 2.0])
        on_image = padding is None or padding[py:py + ph, px:px + pw].mean() < 0.05
        if apart and on_image and np.hypot(*(copy_c - centre)) >= target_dist + margin:
            break
    else:
        return None
    patch = cv2.resize(crop[y0:y1, x0:x1], (pw, ph), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    # raised-cosine ramps over the outer 20 % of each side, so the copy has no rectangular seam
    alpha = np.outer(_feather(ph), _feather(pw))[:, :, None]
    region = crop[py:py + ph, px:px + pw]
    region[...] = np.clip(alpha * patch + (1.0 - alpha) * region, 0, 255).round().astype(crop.dtype)
    return np.array([px, py, pw, ph], dtype=np.float64)


def paste_occluder(
    crop: np.ndarray, box_norm_xywh: Sequence[float], rng: np.random.Generator,
    padding: np.ndarray | None = None, coverage: tuple[float, float] = (0.15, 0.6), tries: int = 12,
) -> np.ndarray | None:
    """Not official: a bar of the crop's own background (taken where it does not overlap the
    target, re-lit by U(0.6, 1.4)) pasted across the target, mostly upright like a passer-by or
    a pole, hiding a ``coverage`` share of its box, so that the model learns to keep the whole
    box of a partly hidden target (the label stays the full box, as in GOT-10k). ``crop`` (uint8,
    S x S x 3) is changed in place; returns the bar's box in pixels (x, y, w, h), or None when the
    target is too small or no place fits. ``padding`` (True = outside the image): the source
    patch is never taken from padding.
    """
    size = crop.shape[0]
    x, y, w, h = (float(v) * size for v in box_norm_xywh)
    if w < 4 or h < 4:
        return None
    upright = rng.random() < 0.7
    # the bar crosses the target along one axis: (across, along) = (x, w) upright, else (y, h)
    along_len = h if upright else w
    across_len = w if upright else h
    for _ in range(tries):
        thick = across_len * rng.uniform(0.2, 0.7)
        long = along_len * rng.uniform(1.2, 2.5)
        start = (x if upright else y) - thick + rng.uniform(0.0, across_len + thick)
        mid = (y + h / 2 if upright else x + w / 2) + along_len * rng.uniform(-0.3, 0.3)
        bx, by, bw, bh = (start, mid - long / 2, thick, long) if upright else (mid - long / 2, start, long, thick)
        x0, y0 = max(0, int(round(bx))), max(0, int(round(by)))
        x1, y1 = min(size, int(round(bx + bw))), min(size, int(round(by + bh)))
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        hidden = _overlap_area((x0, y0, x1 - x0, y1 - y0), (x, y, w, h)) / (w * h)
        if not coverage[0] <= hidden <= coverage[1]:
            continue
        pw, ph = x1 - x0, y1 - y0
        if pw >= size or ph >= size:
            continue
        sx, sy = int(rng.integers(0, size - pw + 1)), int(rng.integers(0, size - ph + 1))
        apart = sx + pw <= x or sx >= x + w or sy + ph <= y or sy >= y + h
        on_image = padding is None or padding[sy:sy + ph, sx:sx + pw].mean() < 0.05
        if apart and on_image:
            break
    else:
        return None
    patch = crop[sy:sy + ph, sx:sx + pw].astype(np.float32) * rng.uniform(0.6, 1.4)
    if rng.random() < 0.5:
        patch = patch[::-1, ::-1]
    # a 1-2 px soft rim: an occluder's edge is sharp, but not aliased
    alpha = np.outer(_feather(ph, max(1, min(2, ph // 4))), _feather(pw, max(1, min(2, pw // 4))))
    if padding is not None:  # the bar stands in the scene: the padding outside the image stays
        alpha = alpha * ~padding[y0:y1, x0:x1]
    alpha = alpha[:, :, None]
    region = crop[y0:y1, x0:x1]
    region[...] = np.clip(alpha * patch + (1.0 - alpha) * region, 0, 255).round().astype(crop.dtype)
    return np.array([x0, y0, pw, ph], dtype=np.float64)


def _overlap_area(a: Sequence[float], b: Sequence[float]) -> float:
    """Area shared by two (x, y, w, h) boxes."""
    return max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])) * max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))


def _feather(n: int, ramp: int | None = None) -> np.ndarray:
    """Raised-cosine weights over ``ramp`` pixels at both ends (default: 20 % of ``n``)."""
    ramp = max(1, int(round(0.2 * n))) if ramp is None else ramp
    t = np.minimum(np.arange(n) + 0.5, n - 0.5 - np.arange(n)) / ramp
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(t, 0.0, 1.0))


def denormalize(tensor: Tensor) -> np.ndarray:
    """Normalised (3, S, S) tensor -> uint8 RGB (S, S, 3) for viewing (inverse of the normalisation)."""
    x = tensor.detach().to("cpu", torch.float32) * _STD.view(3, 1, 1) + _MEAN.view(3, 1, 1)
    return (x.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
