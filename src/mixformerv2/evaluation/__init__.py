"""Evaluation: tracking-benchmark metrics equal to the established tools.

:func:`sequence_metrics` evaluates one sequence under the pytracking convention of the official
MixFormerV2 analysis code (default; modes ``lasot`` / ``uav`` / ``otb``) or under the GOT-10k
toolkit protocols (``convention="got10k"``, modes ``otb`` / ``lasot`` / ``got10k``);
:func:`aggregate` turns a list of such results into the dataset numbers (AUC, OP50, OP75,
Precision, Norm Precision; success/precision scores; AO, SR). :func:`success_auc` is the
one-call pytracking success AUC in percent. See :mod:`mixformerv2.evaluation.metrics` for the
conventions step by step.
"""

from .metrics import (
    CONVENTIONS,
    GOT10K_GOT_IOU_THRESHOLDS,
    GOT10K_IOU_THRESHOLDS,
    GOT10K_NORM_THRESHOLDS,
    GOT10K_PROTOCOLS,
    PIXEL_THRESHOLDS,
    PYTRACKING_MODES,
    PYTRACKING_NORM_THRESHOLDS,
    PYTRACKING_OVERLAP_THRESHOLDS,
    EmptySequenceError,
    InvalidAnnotationError,
    InvalidPredictionError,
    LengthMismatchError,
    MetricsError,
    SequenceResult,
    aggregate,
    got10k_iou,
    lasot_target_visible,
    pytracking_center_error,
    pytracking_iou,
    sequence_metrics,
    success_auc,
)

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
