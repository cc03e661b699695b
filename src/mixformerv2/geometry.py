"""Box geometry shared by the tracker, data pipeline and metrics.

Boxes are continuous image coordinates: ``xywh`` = top-left corner + size, ``xyxy`` =
corners, ``cxcywh`` = centre + size. ``crop_around``, ``map_back`` and ``clip_box``
reproduce the official tracker bit for bit (spec sections 4.4 and 4.6), including its
quirks (half-to-even rounding, the "+1" border padding, map-back via the unrounded centre).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from .errors import InputError


@dataclass(frozen=True)
class CropInfo:
    """Where a square crop came from: ``side`` px square at (x1, y1), padding per border."""

    side: int
    x1: int
    y1: int
    pad_left: int
    pad_right: int
    pad_top: int
    pad_bottom: int
    resize_factor: float  # out_size / side

    def as_array(self) -> np.ndarray:
        """[side, x1, y1, pad_left, pad_right, pad_top, pad_bottom] (trace.npz ``search_crop``)."""
        return np.array(
            [self.side, self.x1, self.y1, self.pad_left, self.pad_right, self.pad_top, self.pad_bottom],
            dtype=np.int64,
        )


def crop_around(
    image: np.ndarray, box_xywh: Sequence[float], factor: float, out_size: int, out: np.ndarray | None = None
) -> tuple[np.ndarray, CropInfo]:
    """Square crop of side ceil(sqrt(w*h)*factor) centred on the box, resized to out_size.

    ``out``: a C-contiguous (out_size, out_size, channels) array of the image's dtype to resize
    into (no allocation when the crop lies inside the image); it is also what is returned.

    The official ``sample_target``: Python ``round`` (ties to even) for the origin, zero
    padding outside the image, and the official "+1" rule that also zeroes the last image
    column/row whenever the crop reaches the right/bottom border. Resizing uses OpenCV
    INTER_LINEAR on uint8, which the official patches require bit-exactly.
    """
    x, y, w, h = (float(v) for v in box_xywh)
    raw = math.sqrt(w * h) * factor if w * h >= 0 else math.nan
    side = math.ceil(raw) if math.isfinite(raw) else 0
    if not side >= 1:
        raise InputError(f"box {list(box_xywh)} cannot be cropped (side {side} px with factor {factor})")
    height, width = image.shape[:2]
    x1 = int(round(x + 0.5 * w - side * 0.5))
    y1 = int(round(y + 0.5 * h - side * 0.5))
    x2, y2 = x1 + side, y1 + side
    pad_left, pad_top = max(0, -x1), max(0, -y1)
    pad_right, pad_bottom = max(x2 - width + 1, 0), max(y2 - height + 1, 0)
    info = CropInfo(side, x1, y1, pad_left, pad_right, pad_top, pad_bottom, out_size / side)

    # Copied region image[r0:r1, c0:c1]; empty when the crop misses the image (the official
    # slicing would wrap around on a negative end there instead).
    r0, r1 = y1 + pad_top, y2 - pad_bottom
    c0, c1 = x1 + pad_left, x2 - pad_right
    if not (pad_left or pad_right or pad_top or pad_bottom):
        patch = image[r0:r1, c0:c1]  # a view; cv2.resize reads row-strided arrays directly
    else:  # pad once: same result as cv2.copyMakeBorder(region, ..., BORDER_CONSTANT, 0)
        patch = np.zeros((side, side) + image.shape[2:], dtype=image.dtype)
        if r1 > r0 and c1 > c0:
            patch[pad_top : pad_top + r1 - r0, pad_left : pad_left + c1 - c0] = image[r0:r1, c0:c1]
    if out is None:
        return cv2.resize(patch, (out_size, out_size)), info
    if out.shape != (out_size, out_size) + image.shape[2:] or out.dtype != image.dtype or not out.flags.c_contiguous:
        raise ValueError(f"crop buffer {out.shape} {out.dtype} does not fit a {out_size} px crop of {image.dtype} "
                         f"{image.shape}")
    cv2.resize(patch, (out_size, out_size), dst=out)  # in place: shape and type match (checked above)
    return out, info



def crop_padding_mask(info: CropInfo, out_size: int) -> np.ndarray:
    """(out_size, out_size) bool mask of the resized crop: True where padding reaches a pixel.

    The official training crop (``sample_target`` with a mask) builds a float64 mask on the
    side x side crop (1 = padded, including the "+1" border column/row), resizes it with
    ``cv2.resize`` INTER_LINEAR and casts it to bool, so an output pixel is True as soon as
    any source pixel with a positive bilinear weight is padded (threshold ``!= 0``, not 0.5).
    The padded set is "padded row OR padded column" and the bilinear weights are separable,
    so the same mask is obtained from two 1-D resizes without building the side x side image
    (tests check equality with the literal 2-D construction).
    """
    side, out_size = int(info.side), int(out_size)
    if side < 1 or out_size < 1:
        raise InputError(f"crop side {side} and output size {out_size} must be positive")

    def touched(pad_lo: int, pad_hi: int) -> np.ndarray:
        # Two identical columns, not one: OpenCV takes another code path for a 1-px-wide
        # image whose coefficients differ from the 2-D case by rounding (exact 0 vs ~1e-16).
        line = np.ones((side, 2), dtype=np.float64)  # 1 = padded
        line[pad_lo : max(pad_lo, side - pad_hi)] = 0.0
        return cv2.resize(line, (2, out_size), interpolation=cv2.INTER_LINEAR)[:, 0] != 0

    rows = touched(info.pad_top, info.pad_bottom)
    cols = touched(info.pad_left, info.pad_right)
    return rows[:, None] | cols[None, :]


def align_to(moving: np.ndarray, fixed: np.ndarray, max_shift: float = 0.25) -> np.ndarray:
    """``moving`` (H, W, 3) uint8 shifted onto ``fixed`` by their global translation (phase
    correlation, sub-pixel, edges replicated): two crops of one window in consecutive frames then
    differ where things move against the background, not where the camera panned. Unchanged when
    the shift found exceeds ``max_shift`` of the crop's side (no reliable common background)."""
    h, w = fixed.shape[:2]
    gray = [cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float32) for x in (moving, fixed)]
    (dx, dy), _ = cv2.phaseCorrelate(gray[0], gray[1], _hanning(h, w))
    if abs(dx) > max_shift * w or abs(dy) > max_shift * h:
        return moving
    shift = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(moving, shift, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


_HANNING: dict[tuple[int, int], np.ndarray] = {}


def _hanning(h: int, w: int) -> np.ndarray:
    if (h, w) not in _HANNING:
        _HANNING[(h, w)] = cv2.createHanningWindow((w, h), cv2.CV_32F)
    return _HANNING[(h, w)]


def map_back(
    pred_cxcywh_px: Sequence[float], state_xywh: Sequence[float], search_size: int, resize_factor: float
) -> list[float]:
    """Crop-frame (cx, cy, w, h) in image-scale pixels -> image (x, y, w, h).

    Uses the previous state's centre and half the unrounded crop side, exactly as the
    official ``map_box_back`` (not the rounded crop origin).
    """
    cx_prev = state_xywh[0] + 0.5 * state_xywh[2]
    cy_prev = state_xywh[1] + 0.5 * state_xywh[3]
    cx, cy, w, h = (float(v) for v in pred_cxcywh_px)
    half = 0.5 * search_size / resize_factor
    cx_real = cx + (cx_prev - half)
    cy_real = cy + (cy_prev - half)
    return [float(cx_real - 0.5 * w), float(cy_real - 0.5 * h), w, h]


def limit_scale_change(box_xywh: Sequence[float], previous_xywh: Sequence[float], factor: float) -> list[float]:
    """``box_xywh`` with its width and height kept within ``factor`` of ``previous_xywh``'s (same centre)."""
    x, y, w, h = (float(v) for v in box_xywh)
    pw, ph = float(previous_xywh[2]), float(previous_xywh[3])
    nw = min(max(w, pw / factor), pw * factor)
    nh = min(max(h, ph / factor), ph * factor)
    return [x + (w - nw) / 2, y + (h - nh) / 2, nw, nh]


def clip_box(box_xywh: Sequence[float], height: int, width: int, margin: int = 10) -> list[float]:
    """Official ``clip_box``: keep the box inside the image with at least ``margin`` px size."""
    x1, y1, w, h = (float(v) for v in box_xywh)
    x2, y2 = x1 + w, y1 + h
    x1 = min(max(0, x1), width - margin)
    x2 = min(max(margin, x2), width)
    y1 = min(max(0, y1), height - margin)
    y2 = min(max(margin, y2), height)
    w = max(margin, x2 - x1)
    h = max(margin, y2 - y1)
    return [float(x1), float(y1), float(w), float(h)]


# -- box format conversions (numpy, shape (..., 4)) -------------------------------------------------
def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64)
    return np.concatenate([b[..., :2], b[..., :2] + b[..., 2:]], axis=-1)


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64)
    return np.concatenate([b[..., :2], b[..., 2:] - b[..., :2]], axis=-1)


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64)
    return np.concatenate([b[..., :2] - 0.5 * b[..., 2:], b[..., :2] + 0.5 * b[..., 2:]], axis=-1)


def xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64)
    return np.concatenate([0.5 * (b[..., :2] + b[..., 2:]), b[..., 2:] - b[..., :2]], axis=-1)


def iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of (x, y, w, h) boxes (broadcasting over leading axes); 0 when the union is empty."""
    a, b = xywh_to_xyxy(a), xywh_to_xyxy(b)
    lo = np.maximum(a[..., :2], b[..., :2])
    hi = np.minimum(a[..., 2:], b[..., 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    area_a = np.prod(np.clip(a[..., 2:] - a[..., :2], 0, None), axis=-1)
    area_b = np.prod(np.clip(b[..., 2:] - b[..., :2], 0, None), axis=-1)
    union = area_a + area_b - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


# -- input validation -----------------------------------------------------------------------------------
def validate_box(box: Sequence[float], frame_shape: Sequence[int]) -> tuple[float, float, float, float]:
    """Check an (x, y, w, h) target box against a frame of shape (H, W, ...); returns floats."""
    try:
        values = [float(v) for v in np.asarray(box, dtype=np.float64).reshape(-1)]
    except (TypeError, ValueError) as exc:
        raise InputError(f"box must be 4 numbers (x, y, w, h), got {box!r}") from exc
    if len(values) != 4:
        raise InputError(f"box must be 4 numbers (x, y, w, h), got {len(values)}: {box!r}")
    x, y, w, h = values
    if not all(math.isfinite(v) for v in values):
        raise InputError(f"box has a non-finite value: {values}")
    if w <= 0 or h <= 0:
        raise InputError(f"box width and height must be positive, got w={w}, h={h}")
    height, width = int(frame_shape[0]), int(frame_shape[1])
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise InputError(f"box {values} lies entirely outside the {width}x{height} frame")
    return x, y, w, h


def normalize_frame(frame: np.ndarray) -> np.ndarray:
    """Any supported frame -> contiguous uint8 RGB (H, W, 3).

    Gray (H, W) / (H, W, 1) is replicated to 3 channels, RGBA loses its alpha, uint16 is
    scaled to uint8 with rounding: ``(x * 255 + 32767) // 65535``. Contiguous uint8 RGB is
    returned as is (no copy). Other dtypes (bool, float, signed ints) are refused: their
    value range is ambiguous.
    """
    if not isinstance(frame, np.ndarray):
        raise InputError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.size == 0:
        raise InputError(f"frame is empty (shape {frame.shape})")
    if frame.ndim == 2:
        frame = frame[:, :, None]
    if frame.ndim != 3 or frame.shape[2] not in (1, 3, 4):
        raise InputError(f"frame must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {frame.shape}")
    if frame.dtype == np.uint16:
        frame = ((frame.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif frame.dtype != np.uint8:
        raise InputError(f"frame dtype must be uint8 or uint16, got {frame.dtype} (shape {frame.shape})")
    channels = frame.shape[2]
    if channels == 1:
        frame = np.repeat(frame, 3, axis=2)
    elif channels == 4:
        frame = frame[:, :, :3]
    return np.ascontiguousarray(frame)
