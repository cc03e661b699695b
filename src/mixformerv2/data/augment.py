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


def denormalize(tensor: Tensor) -> np.ndarray:
    """Normalised (3, S, S) tensor -> uint8 RGB (S, S, 3) for viewing (inverse of the normalisation)."""
    x = tensor.detach().to("cpu", torch.float32) * _STD.view(3, 1, 1) + _MEAN.view(3, 1, 1)
    return (x.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
