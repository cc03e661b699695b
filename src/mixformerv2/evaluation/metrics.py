"""Single-object tracking benchmark metrics, equal to two established peer implementations.

Boxes are ``[x, y, w, h]`` (top-left corner + size, pixels, float64); row ``i`` of the
prediction and of the ground truth (GT) belong to frame ``i``; frame 0 is the
initialisation frame. Everything is numpy; no peer code is imported.

Convention ``"pytracking"`` (default) - the analysis code of the official MixFormerV2
repository (``lib/test/analysis/extract_results.py`` + ``plot_results.py``, i.e. pytracking),
``mode`` = the sequence's dataset string: ``"lasot"``, ``"uav"`` or ``"otb"`` (every other
dataset name - otb, got10k, trackingnet, nfs, tc128 ... - behaves like ``"otb"``).
Per sequence, in this order:

1. reject NaN predictions or negative predicted w/h (``Error: Invalid results``) and NaN GT
   unless ``mode == "uav"`` (``Warning: NaNs in annotation``);
2. zero-area carry-forward: frames 1, 2, ... in order, a prediction with w == 0 or h == 0 on a
   frame whose GT row has no NaN is replaced by the (already processed) previous prediction
   (frame 1 copies the *raw* frame-0 prediction);
3. length handling: a longer prediction is cut to the GT length; a shorter one raises in
   ``lasot`` mode and is padded with all-zero rows otherwise;
4. the frame-0 prediction := the frame-0 GT (frame 0 is then evaluated like any other);
5. ``valid`` = GT w > 0 and GT h > 0 (and ``target_visible`` when given; ``lasot`` needs it);
6. centre ``x + 0.5*(w - 1)``; centre error in pixels; normalised centre error with both centres
   divided by the GT w/h *before* subtracting (no clamping of small GT sizes);
7. IoU with inclusive pixel corners (``x + w - 1``), no eps and no clamp, so identical
   fractional boxes can give 1 + ulp - computed in the peer's operation order (bit-for-bit);
8. sentinels on invalid frames: IoU -1, normalised error -1, centre error +Inf (``uav``: -1);
   ``lasot`` additionally sets both centre errors of not-visible frames to +Inf. A -1 passes
   every ``<=`` test, so invalid frames count as normalised-precision (and ``uav`` precision)
   successes;
9. curves, stored as float32 fractions: success ``#(IoU > t)/D`` on 21 thresholds
   (:data:`PYTRACKING_OVERLAP_THRESHOLDS`), precision ``#(err <= k px)/D`` for k = 0..50,
   normalised precision ``#(nerr <= k/100)/D``; ``D`` = GT frames, or valid frames with
   ``exclude_invalid_frames=True`` (the MixFormerV2 analysis script uses ``False``);
10. ``avg_overlap_all`` = mean IoU over the valid frames (float64).

Dataset scores (:func:`aggregate`, ``print_results``): percent, computed in float32 from the
plain mean of the per-sequence curves; ``AUC`` = mean of the 21 success points (not a
trapezoid; a perfect tracker with integer boxes gets 20/21), ``OP50`` / ``OP75`` = success at
0.5 / at the 0.75 grid point, ``Precision`` = precision at 20 px, ``Norm Precision`` =
normalised precision at 0.20.

Convention ``"got10k"`` - the GOT-10k toolkit (``got10k`` 0.1.3; LaSOT protocol from its GitHub
master), ``mode`` = protocol, float64 fractions throughout:

* ``"otb"`` (``ExperimentOTB``): frame 0 := GT; lengths must be equal; IoU =
  ``inter / (union + eps)`` clipped to [0, 1] with exclusive corners (``x + w``); no frame is
  excluded and no flag is used (NaN rows just fail every test); success on
  ``linspace(0, 1, 21)`` (``IoU > t``), precision at k = 0..50 px; ``success_score`` = mean of
  the success curve, ``precision_score`` = precision at 20 px, ``success_rate`` = success at 0.5.
* ``"lasot"`` (``ExperimentLaSOT``): frame 0 := GT, both sequences cut to the shorter length,
  frames with a NaN GT value removed; adds the normalised centre error (difference divided by
  ``max(1, GT w/h)``), its curve on ``linspace(0, 0.5, 51)`` and
  ``normalized_precision_score`` = mean of all 51 points of that curve.
* ``"got10k"`` (``ExperimentGOT10k``, subset val): frame 0 dropped; both boxes clipped to the
  image (x -> [0, W], then w -> [0, W - x]; same for y/h); frames with ``cover == 0`` removed;
  ``ao`` = mean IoU, ``sr`` = fraction with IoU > 0.5, success curve on ``linspace(0, 1, 101)``;
  the dataset numbers pool the frames of all sequences.

Dataset aggregation of ``otb``/``lasot`` averages the per-sequence curves (equal weights).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..errors import InputError

__all__ = [
    "CONVENTIONS",
    "EmptySequenceError",
    "GOT10K_GOT_IOU_THRESHOLDS",
    "GOT10K_IOU_THRESHOLDS",
    "GOT10K_NORM_THRESHOLDS",
    "GOT10K_PROTOCOLS",
    "InvalidAnnotationError",
    "InvalidPredictionError",
    "LengthMismatchError",
    "MetricsError",
    "PIXEL_THRESHOLDS",
    "PYTRACKING_MODES",
    "PYTRACKING_NORM_THRESHOLDS",
    "PYTRACKING_OVERLAP_THRESHOLDS",
    "SequenceResult",
    "aggregate",
    "got10k_iou",
    "lasot_target_visible",
    "pytracking_center_error",
    "pytracking_iou",
    "sequence_metrics",
    "success_auc",
]


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class MetricsError(InputError):
    """Inputs the metric code cannot evaluate (base class of all metric errors)."""


class InvalidPredictionError(MetricsError):
    """NaN or negative-size predictions (pytracking: ``Error: Invalid results``)."""


class InvalidAnnotationError(MetricsError):
    """Unusable ground truth (pytracking: ``Warning: NaNs in annotation``)."""


class LengthMismatchError(MetricsError):
    """Prediction / GT / flag lengths the convention does not accept."""


class EmptySequenceError(MetricsError):
    """Nothing to evaluate (pytracking: ``Seq length zero``; an empty GT or result list)."""


# --------------------------------------------------------------------------------------------
# Thresholds, exactly as each peer builds them (float64)
# --------------------------------------------------------------------------------------------

#: pytracking ``torch.arange(0.0, 1.0 + 0.05, 0.05, dtype=torch.float64)``. torch evaluates it in
#: blocks of four (``base + j*step`` with ``base = 4*m*step``), which gives 0.6500000000000001 and
#: 0.7500000000000001 where ``k*0.05`` would give 0.65 and 0.75; these are the peer's values.
PYTRACKING_OVERLAP_THRESHOLDS: np.ndarray = np.array(
    [
        0.0, 0.05, 0.1, 0.15000000000000002, 0.2, 0.25, 0.30000000000000004,
        0.35000000000000003, 0.4, 0.45, 0.5, 0.55, 0.6000000000000001, 0.6500000000000001,
        0.7000000000000001, 0.7500000000000001, 0.8, 0.8500000000000001, 0.9,
        0.9500000000000001, 1.0,
    ],
    dtype=np.float64,
)  # fmt: skip
#: Centre-error thresholds in pixels, 0..50 (both peers; got10k uses int64 ``np.arange(0, 51)``).
PIXEL_THRESHOLDS: np.ndarray = np.arange(0, 51, dtype=np.float64)
#: pytracking ``torch.arange(0, 51, dtype=torch.float64) / 100.0`` (0.35, 0.41, 0.47 exact).
PYTRACKING_NORM_THRESHOLDS: np.ndarray = np.arange(0, 51, dtype=np.float64) / 100.0
#: got10k OTB/LaSOT ``np.linspace(0, 1, 21)`` (0.65 and 0.75 exact).
GOT10K_IOU_THRESHOLDS: np.ndarray = np.linspace(0, 1, 21)
#: got10k LaSOT ``np.linspace(0, 0.5, 51)`` (0.35000000000000003, ...).
GOT10K_NORM_THRESHOLDS: np.ndarray = np.linspace(0, 0.5, 51)
#: got10k GOT-10k ``np.linspace(0, 1, 101)``.
GOT10K_GOT_IOU_THRESHOLDS: np.ndarray = np.linspace(0, 1, 101)
for _a in (
    PYTRACKING_OVERLAP_THRESHOLDS,
    PIXEL_THRESHOLDS,
    PYTRACKING_NORM_THRESHOLDS,
    GOT10K_IOU_THRESHOLDS,
    GOT10K_NORM_THRESHOLDS,
    GOT10K_GOT_IOU_THRESHOLDS,
):
    _a.flags.writeable = False
del _a

_OP50_INDEX = 10  # success curve at 0.5
_OP75_INDEX = 15  # the 0.75 grid point (0.7500000000000001 for pytracking, 0.75 for got10k)
_PREC_INDEX = 20  # precision at 20 px
_NORM_PREC_INDEX = 20  # normalised precision at 0.20
_GOT_SR75_INDEX = 75  # GOT-10k success curve at 0.75

PYTRACKING_MODES: tuple[str, ...] = ("lasot", "uav", "otb")
GOT10K_PROTOCOLS: tuple[str, ...] = ("otb", "lasot", "got10k")
CONVENTIONS: tuple[str, ...] = ("pytracking", "got10k")
_EPS = float(np.finfo(float).eps)  # got10k: added to the IoU union


# --------------------------------------------------------------------------------------------
# Result container
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SequenceResult:
    """Per-sequence measures of one convention/mode.

    Per-frame arrays (float64):

    * pytracking: one entry per GT frame after the length handling, with the sentinels
      (IoU -1, centre error +Inf or -1, normalised error -1 / +Inf); ``frame_mask`` = ``valid``.
    * got10k ``otb``: one entry per frame; ``norm_center_error`` is None; mask all True.
    * got10k ``lasot``: the evaluated (non-NaN-GT) frames only; ``frame_mask`` = which frames of
      the truncated sequence were evaluated.
    * got10k ``got10k``: IoU of frames 1..N-1 after image clipping (no centre errors);
      ``frame_mask`` = kept frames (``cover > 0``).

    Curves: pytracking float32 fractions (21 / 51 / 51 points); got10k float64 fractions
    (21 / 51 / 51, or 101 for ``got10k``). ``scores`` holds the peer's own per-sequence numbers
    under its own names: pytracking ``AUC``, ``OP50``, ``OP75``, ``Precision``, ``Norm
    Precision`` (percent, float32 values); got10k ``success_score``, ``precision_score``,
    ``success_rate`` [, ``normalized_precision_score``] or ``ao``, ``sr``, ``sr_0.75``.
    ``average_overlap`` is pytracking's ``avg_overlap_all`` (valid frames), GOT-10k's ``ao``,
    or the mean IoU of the evaluated frames for got10k ``otb``/``lasot`` (not a peer number).
    """

    convention: str
    mode: str
    n_frames: int  # GT frames after the length handling (got10k lasot: after truncation)
    iou: np.ndarray
    center_error: np.ndarray | None
    norm_center_error: np.ndarray | None
    frame_mask: np.ndarray
    denominator: int  # frames in the curve denominator
    success_curve: np.ndarray
    precision_curve: np.ndarray | None
    norm_precision_curve: np.ndarray | None
    average_overlap: float
    scores: Mapping[str, float] = field(default_factory=dict)
    exclude_invalid_frames: bool = False

    @property
    def kept_iou(self) -> np.ndarray:
        """The IoUs that enter the dataset pooling of GOT-10k (frame_mask applied)."""
        if self.convention == "got10k" and self.mode == "got10k":
            return self.iou[self.frame_mask]
        return self.iou


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _as_boxes(boxes: object, what: str) -> np.ndarray:
    """(N, 4) float64 copy; a single 1-D box of 4 numbers is one frame."""
    try:
        arr = np.array(boxes, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what}: not an array of numbers ({exc})") from None
    if arr.ndim == 1 and arr.shape[0] == 4:
        arr = arr.reshape(1, 4)
    elif arr.ndim == 1 and arr.shape[0] == 0:
        arr = arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise InputError(f"{what}: expected an (N, 4) array of x, y, w, h boxes, got shape {arr.shape}")
    return arr


def _as_flags(values: object, n: int, what: str) -> np.ndarray:
    """1-D bool array of length ``n``."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.shape[0] != n:
        raise LengthMismatchError(f"{what} has {arr.shape[0]} entries but the ground truth has {n} frames")
    if arr.dtype != bool:
        with np.errstate(invalid="ignore"):
            arr = arr.astype(np.float64) != 0
    return arr


def lasot_target_visible(full_occlusion: object, out_of_view: object) -> np.ndarray:
    """pytracking's LaSOT loader: visible = (full_occlusion == 0) & (out_of_view == 0)."""
    occ = np.asarray(full_occlusion).reshape(-1)
    oov = np.asarray(out_of_view).reshape(-1)
    if occ.shape != oov.shape:
        raise LengthMismatchError(f"full_occlusion has {occ.shape[0]} entries, out_of_view {oov.shape[0]}")
    return (occ == 0) & (oov == 0)


# --------------------------------------------------------------------------------------------
# pytracking (MixFormerV2 analysis)
# --------------------------------------------------------------------------------------------


def pytracking_iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """pytracking ``calc_iou_overlap``: inclusive pixel corners, no eps, no clamp (bit-for-bit)."""
    tl = np.maximum(pred[:, :2], gt[:, :2])
    br = np.minimum(pred[:, :2] + pred[:, 2:] - 1.0, gt[:, :2] + gt[:, 2:] - 1.0)
    sz = np.maximum(br - tl + 1.0, 0.0)
    intersection = sz[:, 0] * sz[:, 1]
    union = pred[:, 2] * pred[:, 3] + gt[:, 2] * gt[:, 3] - intersection
    with np.errstate(divide="ignore", invalid="ignore"):
        return intersection / union


def pytracking_center_error(pred: np.ndarray, gt: np.ndarray, normalized: bool = False) -> np.ndarray:
    """pytracking ``calc_err_center``; ``normalized`` divides both centres by the GT w/h first."""
    pred_center = pred[:, :2] + 0.5 * (pred[:, 2:] - 1.0)
    gt_center = gt[:, :2] + 0.5 * (gt[:, 2:] - 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if normalized:
            pred_center = pred_center / gt[:, 2:]
            gt_center = gt_center / gt[:, 2:]
        d = pred_center - gt_center
        return np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1])


def _pytracking_frame_errors(
    pred: np.ndarray, gt: np.ndarray, mode: str, target_visible: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``calc_seq_err_robust``: (IoU, centre error, normalised centre error, valid)."""
    pred = pred.copy()
    n_gt = gt.shape[0]
    if n_gt == 0:
        raise EmptySequenceError("the ground truth has no frames")

    # 1. rejects
    bad = np.isnan(pred).any(axis=1) | (pred[:, 2:] < 0.0).any(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidPredictionError(
            f"Error: Invalid results (NaN or negative width/height in the prediction, first on frame {i}: "
            f"{pred[i].tolist()})"
        )
    gt_nan_rows = np.isnan(gt).any(axis=1)
    if gt_nan_rows.any() and mode != "uav":
        i = int(np.flatnonzero(gt_nan_rows)[0])
        raise InvalidAnnotationError(
            f"Warning: NaNs in annotation (first on frame {i}; only mode 'uav' accepts NaN ground-truth rows)"
        )

    # 2. zero-area carry-forward (GT row looked up by the prediction's frame index)
    zero_area = (pred[:, 2:] == 0.0).any(axis=1)
    if zero_area.any():
        for i in range(1, pred.shape[0]):
            if zero_area[i]:
                if i >= n_gt:
                    raise LengthMismatchError(
                        f"zero-area prediction on frame {i} beyond the end of the {n_gt}-frame ground truth "
                        "(the peer raises IndexError here)"
                    )
                if not gt_nan_rows[i]:
                    pred[i, :] = pred[i - 1, :]

    # 3. length handling
    if pred.shape[0] != n_gt:
        if pred.shape[0] > n_gt:
            pred = pred[:n_gt, :]
        elif mode == "lasot":
            raise LengthMismatchError(
                f"Mis-match in tracker prediction and GT lengths ({pred.shape[0]} predicted vs {n_gt} GT frames; "
                "mode 'lasot' does not pad)"
            )
        else:
            pred = np.concatenate([pred, np.zeros((n_gt - pred.shape[0], 4), dtype=np.float64)], axis=0)

    # 4. frame 0 := GT
    pred[0, :] = gt[0, :]

    # 5. valid frames
    with np.errstate(invalid="ignore"):
        valid = (gt[:, 2:] > 0.0).sum(axis=1) == 2
    if target_visible is not None:
        valid = valid & target_visible

    # 6./7. measures
    err_center = pytracking_center_error(pred, gt)
    err_center_norm = pytracking_center_error(pred, gt, normalized=True)
    err_overlap = pytracking_iou(pred, gt)

    # 8. sentinels
    err_center[~valid] = -1.0 if mode == "uav" else math.inf
    err_center_norm[~valid] = -1.0
    err_overlap[~valid] = -1.0
    if mode == "lasot":
        err_center_norm[~target_visible] = math.inf
        err_center[~target_visible] = math.inf

    if np.isnan(err_overlap).any():
        i = int(np.flatnonzero(np.isnan(err_overlap))[0])
        raise MetricsError(f"Nans in calculated overlap (frame {i}: non-finite box values)")
    return err_overlap, err_center, err_center_norm, valid


def _float32_fraction(counts: np.ndarray, denominator: int) -> np.ndarray:
    """``counts.float() / D`` in float32, as the peer stores its per-sequence curves."""
    return counts.astype(np.float32) / np.float32(denominator)


def _pytracking_sequence(
    pred: np.ndarray,
    gt: np.ndarray,
    mode: str,
    target_visible: object,
    exclude_invalid_frames: bool,
) -> SequenceResult:
    tv = None
    if target_visible is not None:
        tv = _as_flags(target_visible, gt.shape[0], "target_visible")
    elif mode == "lasot":
        raise MetricsError(
            "mode 'lasot' needs target_visible (pytracking derives it from full_occlusion/out_of_view; "
            "see lasot_target_visible)"
        )
    iou, ce, nce, valid = _pytracking_frame_errors(pred, gt, mode, tv)

    n_frames = int(gt.shape[0])
    denominator = int(valid.sum()) if exclude_invalid_frames else n_frames
    if denominator <= 0:
        raise EmptySequenceError("Seq length zero (no valid frame while exclude_invalid_frames=True)")

    with np.errstate(invalid="ignore"):
        success = _float32_fraction((iou[:, None] > PYTRACKING_OVERLAP_THRESHOLDS[None, :]).sum(0), denominator)
        precision = _float32_fraction((ce[:, None] <= PIXEL_THRESHOLDS[None, :]).sum(0), denominator)
        norm_precision = _float32_fraction((nce[:, None] <= PYTRACKING_NORM_THRESHOLDS[None, :]).sum(0), denominator)
    valid_iou = iou[valid]
    # torch ``err_overlap[valid_frame].mean()`` (NaN without valid frames)
    avg_overlap = float(_torch_sum_vector(valid_iou) / valid_iou.size) if valid_iou.size else math.nan

    agg = _pytracking_scores([success], [precision], [norm_precision])
    return SequenceResult(
        convention="pytracking",
        mode=mode,
        n_frames=n_frames,
        iou=iou,
        center_error=ce,
        norm_center_error=nce,
        frame_mask=valid,
        denominator=denominator,
        success_curve=success,
        precision_curve=precision,
        norm_precision_curve=norm_precision,
        average_overlap=avg_overlap,
        scores={k: agg[k] for k in ("AUC", "OP50", "OP75", "Precision", "Norm Precision")},
        exclude_invalid_frames=bool(exclude_invalid_frames),
    )


def _pytracking_scores(
    success: Sequence[np.ndarray], precision: Sequence[np.ndarray], norm_precision: Sequence[np.ndarray]
) -> dict:
    """``print_results``: float32 mean of per-sequence curves, x100, AUC = mean of 21 points."""
    hundred = np.float32(100.0)
    curves = {}
    for name, per_seq in (("auc_curve", success), ("prec_curve", precision), ("norm_prec_curve", norm_precision)):
        stacked = np.stack(per_seq).astype(np.float32)
        curves[name] = (_torch_sum_rows(stacked) / np.float32(len(per_seq))) * hundred
    auc = _torch_sum_vector(curves["auc_curve"]) / np.float32(curves["auc_curve"].shape[0])
    return {
        "AUC": float(auc),
        "OP50": float(curves["auc_curve"][_OP50_INDEX]),
        "OP75": float(curves["auc_curve"][_OP75_INDEX]),
        "Precision": float(curves["prec_curve"][_PREC_INDEX]),
        "Norm Precision": float(curves["norm_prec_curve"][_NORM_PREC_INDEX]),
        **curves,
        "n_sequences": len(success),
    }


# The peer's means are torch CPU reductions (``sum`` then ``/ n``): float32 for the scores,
# float64 for ``avg_overlap_all``. To give the same bits, the sums below add in the order of
# torch's cascade-sum kernel (aten/src/ATen/native/cpu/SumKernel.cpp: 4-way ILP, 4-level
# cascade, 256-bit vectors = 8 float / 4 double lanes), which reproduces every pytracking score
# and average overlap of the fixtures exactly; a plain sum is within an ulp or so (the README
# tolerance for the scores is 1e-4 percent).
_TORCH_VECTOR_BYTES = 32
_TORCH_ILP = 4
_TORCH_LEVELS = 4


def _torch_multi_row_sum(x: np.ndarray) -> np.ndarray:
    """``multi_row_sum``: sum over axis 0 with the 4-level cascade, in ``x.dtype``."""
    size = x.shape[0]
    level_power = max(4, (0 if size <= 1 else (size - 1).bit_length()) // _TORCH_LEVELS)
    level_step = 1 << level_power
    level_mask = level_step - 1
    acc = np.zeros((_TORCH_LEVELS,) + x.shape[1:], dtype=x.dtype)
    i = 0
    while i + level_step <= size:
        for _ in range(level_step):
            acc[0] += x[i]
            i += 1
        for j in range(1, _TORCH_LEVELS):
            acc[j] += acc[j - 1]
            acc[j - 1] = 0
            if i & (level_mask << (j * level_power)):
                break
    while i < size:
        acc[0] += x[i]
        i += 1
    for j in range(1, _TORCH_LEVELS):
        acc[0] += acc[j]
    return acc[0]


def _torch_row_sum(x: np.ndarray) -> np.ndarray:
    """``row_sum``: rows viewed as (-1, 4) partial sums, tail into partial 0, then combined."""
    n = x.shape[0]
    n_ilp = n // _TORCH_ILP
    if n_ilp:
        partial = _torch_multi_row_sum(x[: n_ilp * _TORCH_ILP].reshape((n_ilp, _TORCH_ILP) + x.shape[1:])).copy()
    else:
        partial = np.zeros((_TORCH_ILP,) + x.shape[1:], dtype=x.dtype)
    for i in range(n_ilp * _TORCH_ILP, n):
        partial[0] += x[i]
    for k in range(1, _TORCH_ILP):
        partial[0] += partial[k]
    return partial[0]


def _torch_sum_rows(x: np.ndarray) -> np.ndarray:
    """torch ``x.sum(0)`` of a C-contiguous (n, C) matrix (``vectorized_outer_sum``)."""
    lanes = _TORCH_VECTOR_BYTES // x.dtype.itemsize
    cols = x.shape[1]
    if cols < lanes:  # never the case for 21/51-point curves
        return np.add.reduce(x, axis=0, dtype=x.dtype)
    out = np.empty(cols, dtype=x.dtype)
    j = 0
    while j + _TORCH_ILP * lanes <= cols:
        out[j : j + _TORCH_ILP * lanes] = _torch_multi_row_sum(x[:, j : j + _TORCH_ILP * lanes])
        j += _TORCH_ILP * lanes
    while j + lanes <= cols:
        out[j : j + lanes] = _torch_row_sum(x[:, j : j + lanes])
        j += lanes
    for k in range(j, cols):
        out[k] = _torch_row_sum(x[:, k])
    return out


def _torch_sum_vector(x: np.ndarray) -> np.generic:
    """torch ``x.sum()`` of a contiguous vector (``vectorized_inner_sum`` / ``scalar_inner_sum``)."""
    dtype = x.dtype.type
    lanes = _TORCH_VECTOR_BYTES // x.dtype.itemsize
    n = x.shape[0]
    n_vec = n // lanes
    if n_vec == 0:
        return dtype(_torch_row_sum(x))
    lane_sums = _torch_row_sum(x[: n_vec * lanes].reshape(n_vec, lanes))
    total = dtype(0)
    for k in range(n_vec * lanes, n):
        total = dtype(total + x[k])
    for k in range(lanes):
        total = dtype(total + lane_sums[k])
    return total


# --------------------------------------------------------------------------------------------
# got10k toolkit
# --------------------------------------------------------------------------------------------


def got10k_iou(pred: np.ndarray, gt: np.ndarray, bound: tuple[float, float] | None = None) -> np.ndarray:
    """got10k ``rect_iou``: exclusive corners, ``inter / (union + eps)`` clipped to [0, 1].

    With ``bound = (W, H)`` both boxes are first clipped to the image like the toolkit does
    (x -> [0, W], then w -> [0, W - x]; same for y, h). Inputs are not modified.
    """
    pred = np.array(pred, dtype=np.float64, copy=True)
    gt = np.array(gt, dtype=np.float64, copy=True)
    if pred.shape != gt.shape:
        raise LengthMismatchError(f"prediction shape {pred.shape} != ground-truth shape {gt.shape}")
    if bound is not None:
        for r in (pred, gt):
            r[:, 0] = np.clip(r[:, 0], 0, bound[0])
            r[:, 1] = np.clip(r[:, 1], 0, bound[1])
            r[:, 2] = np.clip(r[:, 2], 0, bound[0] - r[:, 0])
            r[:, 3] = np.clip(r[:, 3], 0, bound[1] - r[:, 1])
    x1 = np.maximum(pred[..., 0], gt[..., 0])
    y1 = np.maximum(pred[..., 1], gt[..., 1])
    x2 = np.minimum(pred[..., 0] + pred[..., 2], gt[..., 0] + gt[..., 2])
    y2 = np.minimum(pred[..., 1] + pred[..., 3], gt[..., 1] + gt[..., 3])
    w = np.maximum(x2 - x1, 0)
    h = np.maximum(y2 - y1, 0)
    areas_inter = w * h
    areas_union = pred[..., 2] * pred[..., 3] + gt[..., 2] * gt[..., 3] - areas_inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.clip(areas_inter / (areas_union + _EPS), 0.0, 1.0)


def _got10k_center_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """got10k ``center_error`` (centre ``x + (w - 1)/2``)."""
    c1 = pred[..., :2] + (pred[..., 2:] - 1) / 2
    c2 = gt[..., :2] + (gt[..., 2:] - 1) / 2
    return np.sqrt(np.sum(np.power(c1 - c2, 2), axis=-1))


def _got10k_normalized_center_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """got10k master ``normalized_center_error``: difference / max(1, GT w/h)."""
    c1 = pred[..., :2] + (pred[..., 2:] - 1) / 2
    c2 = gt[..., :2] + (gt[..., 2:] - 1) / 2
    return np.sqrt(np.sum(np.power((c1 - c2) / np.maximum(np.array([[1.0, 1.0]]), gt[:, 2:]), 2), axis=-1))


def _mean_axis0(binary: np.ndarray) -> np.ndarray:
    """``np.mean(bool_matrix, axis=0)`` (NaN where there are no rows, like numpy)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if binary.shape[0] == 0:
            return np.full(binary.shape[1], math.nan)
        return np.mean(binary, axis=0)


def _nanless_mean(values: np.ndarray) -> float:
    """``np.mean`` returning NaN (without a warning) for an empty array."""
    if values.size == 0:
        return math.nan
    return float(np.mean(values))


def _got10k_otb_like(pred: np.ndarray, gt: np.ndarray, protocol: str) -> SequenceResult:
    if gt.shape[0] == 0:
        raise EmptySequenceError("the ground truth has no frames")
    if pred.shape[0] == 0:
        raise LengthMismatchError("the prediction has no frames")
    pred[0] = gt[0]
    if protocol == "otb":
        if pred.shape[0] != gt.shape[0]:
            raise LengthMismatchError(
                f"prediction has {pred.shape[0]} frames but the ground truth has {gt.shape[0]} "
                "(got10k ExperimentOTB asserts equal lengths)"
            )
        mask = np.ones(gt.shape[0], dtype=bool)
        p, g = pred, gt
    else:
        n = min(pred.shape[0], gt.shape[0])
        pred, gt = pred[:n], gt[:n]
        mask = ~np.any(np.isnan(gt), axis=1)
        p, g = pred[mask, :], gt[mask, :]

    with np.errstate(invalid="ignore", divide="ignore"):
        iou = got10k_iou(p, g)
        ce = _got10k_center_error(p, g)
        nce = _got10k_normalized_center_error(p, g) if protocol == "lasot" else None
        success = _mean_axis0(np.greater(iou[:, None], GOT10K_IOU_THRESHOLDS[None, :]))
        precision = _mean_axis0(np.less_equal(ce[:, None], np.arange(0, 51)[None, :]))
        norm_precision = (
            _mean_axis0(np.less_equal(nce[:, None], GOT10K_NORM_THRESHOLDS[None, :])) if nce is not None else None
        )
    scores = {
        "success_score": float(np.mean(success)),
        "precision_score": float(precision[_PREC_INDEX]),
        "success_rate": float(success[_OP50_INDEX]),
    }
    if norm_precision is not None:
        scores["normalized_precision_score"] = float(np.mean(norm_precision))
    return SequenceResult(
        convention="got10k",
        mode=protocol,
        n_frames=int(gt.shape[0]),
        iou=iou,
        center_error=ce,
        norm_center_error=nce,
        frame_mask=mask,
        denominator=int(mask.sum()),
        success_curve=success,
        precision_curve=precision,
        norm_precision_curve=norm_precision,
        average_overlap=_nanless_mean(iou),
        scores=scores,
    )


def _got10k_got(
    pred: np.ndarray, gt: np.ndarray, image_size: Sequence[float] | None, cover: object
) -> SequenceResult:
    if image_size is None:
        raise MetricsError("the GOT-10k protocol needs image_size=(W, H) (meta_info.ini 'resolution')")
    size = tuple(np.asarray(image_size).reshape(-1).tolist())
    if len(size) != 2:
        raise InputError(f"image_size must be (W, H), got {image_size!r}")
    if pred.shape != gt.shape:
        raise LengthMismatchError(
            f"prediction shape {pred.shape} != ground-truth shape {gt.shape} (got10k ExperimentGOT10k asserts equal)"
        )
    if gt.shape[0] == 0:
        raise EmptySequenceError("the ground truth has no frames")
    if cover is None:
        kept = np.ones(gt.shape[0] - 1, dtype=bool)
    else:
        cov = np.asarray(cover).reshape(-1)
        if cov.shape[0] != gt.shape[0]:
            raise LengthMismatchError(f"cover has {cov.shape[0]} entries but the ground truth has {gt.shape[0]} frames")
        kept = cov[1:] > 0
    with np.errstate(invalid="ignore"):
        iou = got10k_iou(pred[1:], gt[1:], bound=size)
        kept_iou = iou[kept]
        ao = _nanless_mean(kept_iou)
        sr = _nanless_mean(kept_iou > 0.5)
        success = _mean_axis0(np.greater(kept_iou[:, None], GOT10K_GOT_IOU_THRESHOLDS[None, :]))
    return SequenceResult(
        convention="got10k",
        mode="got10k",
        n_frames=int(gt.shape[0]),
        iou=iou,
        center_error=None,
        norm_center_error=None,
        frame_mask=kept,
        denominator=int(kept.sum()),
        success_curve=success,
        precision_curve=None,
        norm_precision_curve=None,
        average_overlap=ao,
        scores={"ao": ao, "sr": sr, "sr_0.75": float(success[_GOT_SR75_INDEX])},
    )


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def sequence_metrics(
    pred: object,
    gt: object,
    mode: str = "otb",
    *,
    convention: str = "pytracking",
    target_visible: object = None,
    exclude_invalid_frames: bool = False,
    image_size: Sequence[float] | None = None,
    cover: object = None,
) -> SequenceResult:
    """Evaluate one sequence under ``convention`` (see the module docstring).

    ``pred`` / ``gt``: (N, 4) x, y, w, h boxes. pytracking: ``mode`` in ``lasot`` / ``uav`` /
    ``otb`` (any other dataset name means ``otb``), ``target_visible`` per GT frame (required
    for ``lasot``), ``exclude_invalid_frames`` selects the curve denominator. got10k: ``mode``
    is the protocol ``otb`` / ``lasot`` / ``got10k``; ``got10k`` needs ``image_size=(W, H)``
    and uses ``cover`` (frames with cover == 0 are dropped; None keeps every frame).
    Raises a :class:`MetricsError` subclass where the peer raises.
    """
    p = _as_boxes(pred, "prediction")
    g = _as_boxes(gt, "ground truth")
    if convention == "pytracking":
        mode = mode if mode in ("lasot", "uav") else "otb"
        return _pytracking_sequence(p, g, mode, target_visible, exclude_invalid_frames)
    if convention == "got10k":
        if mode == "got10k":
            return _got10k_got(p, g, image_size, cover)
        if mode in ("otb", "lasot"):
            return _got10k_otb_like(p, g, mode)
        raise InputError(f"unknown got10k protocol {mode!r}; expected one of {GOT10K_PROTOCOLS}")
    raise InputError(f"unknown metrics convention {convention!r}; expected one of {CONVENTIONS}")


def aggregate(results: Iterable[SequenceResult]) -> dict:
    """Dataset-level numbers of sequences evaluated with one convention/mode.

    pytracking: ``AUC``, ``OP50``, ``OP75``, ``Precision``, ``Norm Precision`` (percent, float32
    values) and the curves ``auc_curve``, ``prec_curve``, ``norm_prec_curve`` (float32, percent).
    got10k ``otb``/``lasot``: the ``overall`` block of ``report`` (mean of the per-sequence
    curves; fractions). got10k ``got10k``: ``ao``, ``sr``, ``succ_curve`` (101) over the frames
    of all sequences pooled, plus ``sr_0.75`` (curve at 0.75).
    """
    results = list(results)
    if not results:
        raise EmptySequenceError("no sequence results to aggregate")
    first = results[0]
    key = (first.convention, first.mode, first.exclude_invalid_frames)
    for r in results[1:]:
        if (r.convention, r.mode, r.exclude_invalid_frames) != key:
            raise MetricsError(
                f"cannot aggregate results of different conventions/modes: {key} and "
                f"{(r.convention, r.mode, r.exclude_invalid_frames)}"
            )
    if first.convention == "pytracking":
        return _pytracking_scores(
            [r.success_curve for r in results],
            [r.precision_curve for r in results],
            [r.norm_precision_curve for r in results],
        )
    if first.mode == "got10k":
        ious = np.concatenate([r.kept_iou for r in results])
        with np.errstate(invalid="ignore"):
            ao = _nanless_mean(ious)
            sr = _nanless_mean(ious > 0.5)
            succ = _mean_axis0(np.greater(ious[:, None], GOT10K_GOT_IOU_THRESHOLDS[None, :]))
        return {
            "ao": ao,
            "sr": sr,
            "succ_curve": succ,
            "sr_0.75": float(succ[_GOT_SR75_INDEX]),
            "n_sequences": len(results),
        }
    succ = np.mean(np.stack([r.success_curve for r in results]), axis=0)
    prec = np.mean(np.stack([r.precision_curve for r in results]), axis=0)
    out = {
        "success_curve": succ,
        "precision_curve": prec,
        "success_score": float(np.mean(succ)),
        "precision_score": float(prec[_PREC_INDEX]),
        "success_rate": float(succ[_OP50_INDEX]),
    }
    if first.mode == "lasot":
        norm = np.mean(np.stack([r.norm_precision_curve for r in results]), axis=0)
        out["normalized_precision_curve"] = norm
        out["normalized_precision_score"] = float(np.mean(norm))
    out["n_sequences"] = len(results)
    return out


def success_auc(pred: object, gt: object, mode: str = "otb") -> float:
    """pytracking success AUC in percent (mean of the 21-point success curve, MixFormerV2 default)."""
    return sequence_metrics(pred, gt, mode=mode, convention="pytracking").scores["AUC"]
