"""Evaluation: tracking-benchmark metrics equal to the established tools.

:func:`sequence_metrics` evaluates one sequence under the pytracking convention of the official
MixFormerV2 analysis code (default; modes ``lasot`` / ``uav`` / ``otb``) or under the GOT-10k
toolkit protocols (``convention="got10k"``, modes ``otb`` / ``lasot`` / ``got10k``);
:func:`aggregate` turns a list of such results into the dataset numbers (AUC, OP50, OP75,
Precision, Norm Precision; success/precision scores; AO, SR). :func:`success_auc` is the
one-call pytracking success AUC in percent. See :mod:`mixformerv2.evaluation.metrics` for the
conventions step by step.
"""

from . import metrics
from .metrics import *  # noqa: F401,F403  (the public metrics API, listed once in metrics.__all__)

__all__ = list(metrics.__all__)
