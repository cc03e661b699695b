"""Score result folders against a benchmark: markdown table, success and precision plots.

Every number comes from :func:`.metrics.sequence_metrics` and :func:`.metrics.aggregate`
(nothing is recomputed here):

* ``convention="pytracking"`` (default; the official MixFormerV2 analysis): mode ``lasot``
  (with pytracking's target visibility: not fully occluded, not out of view), ``uav`` or
  ``otb`` (everything else) -> AUC, OP50, OP75, P-norm (normalised precision at 0.20),
  P (precision at 20 px). On GOT-10k (val) the GOT-10k protocol's AO / SR0.5 / SR0.75 are
  added (frame 0 dropped, boxes clipped to the image, ``cover == 0`` frames removed).
* ``convention="got10k"`` (the GOT-10k toolkit): protocol ``lasot`` for LaSOT, ``got10k`` for
  GOT-10k (AO / SR only), ``otb`` otherwise; AUC = ``success_score``, OP50 =
  ``success_rate``, P = ``precision_score``, P-norm = ``normalized_precision_score`` (LaSOT).

FPS = frames after the first / their total time, over the sequences with a time file (pytracking
layout and ours); "–" when no time file is there. Every tracker must have a result for every
sequence of the benchmark (``allow_missing`` evaluates the sequences all trackers have, with a
warning that names the others).
"""

from __future__ import annotations

import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import InputError
from .metrics import (
    GOT10K_GOT_IOU_THRESHOLDS,
    GOT10K_IOU_THRESHOLDS,
    GOT10K_NORM_THRESHOLDS,
    PIXEL_THRESHOLDS,
    PYTRACKING_NORM_THRESHOLDS,
    PYTRACKING_OVERLAP_THRESHOLDS,
    MetricsError,
    SequenceResult,
    aggregate,
    sequence_metrics,
)
from ..fileio import atomic_write_bytes
from .results import (
    Benchmark,
    ResultError,
    ResultFolder,
    ResultWarning,
    check_length,
    sequence_names,
    target_visible,
)

__all__ = ["Report", "TrackerReport", "evaluate", "merge_runs", "write_plots"]

CONVENTIONS = ("pytracking", "got10k")
MAIN_COLUMNS = ("AUC", "OP50", "OP75", "P-norm", "P")
GOT_COLUMNS = ("AO", "SR0.5", "SR0.75")


@dataclass
class TrackerReport:
    name: str
    path: Path
    scores: dict[str, float]  # table columns (percent): AUC, OP50, OP75, P-norm, P, AO, SR0.5, SR0.75
    fps: float
    curves: dict[str, tuple[np.ndarray, np.ndarray]]  # plot name -> (thresholds, percent)
    summary: dict  # aggregate() of the main convention/mode
    got10k_summary: dict | None = None  # aggregate() of the GOT-10k protocol (GOT-10k only)
    sequences: dict[str, SequenceResult] = field(default_factory=dict)
    got10k_sequences: dict[str, SequenceResult] = field(default_factory=dict)
    runs: int = 1  # > 1: the mean of this many runs (see merge_runs)
    spread: dict[str, float] = field(default_factory=dict)  # population std of each score over the runs


@dataclass
class Report:
    benchmark: Benchmark
    convention: str
    columns: tuple[str, ...]
    trackers: list[TrackerReport]
    sequences: list[str]
    protocol: str = ""  # the metrics mode (pytracking) or protocol (got10k) of the main columns
    warnings: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        head = "| tracker | " + " | ".join(self.columns) + " | FPS |"
        rule = "|---|" + "---:|" * (len(self.columns) + 1)
        lines = [head, rule]
        for t in self.trackers:
            cells = [_cell(t.scores.get(c)) + (f" ± {_cell(t.spread[c])}" if c in t.spread else "")
                     for c in self.columns]
            lines.append(f"| {t.name} | " + " | ".join(cells) + f" | {_cell(t.fps, 1)} |")
        return "\n".join(lines)

    def describe(self) -> str:
        return (f"{self.benchmark.key}: {len(self.sequences)} sequences, {self.convention} convention, "
                f"{'mode' if self.convention == 'pytracking' else 'protocol'} {self.protocol}")


def _cell(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


# ------------------------------------------------------------------------------------------------
# Evaluation
# ------------------------------------------------------------------------------------------------


def _image_size(seq) -> tuple[int, int]:
    """(W, H) of a GOT-10k sequence: meta_info.ini ``resolution`` or the first frame."""
    meta = (getattr(seq, "extra", {}) or {}).get("meta") or {}
    found = re.findall(r"\d+", str(meta.get("resolution", "")))
    if len(found) == 2:
        return int(found[0]), int(found[1])
    from ..tracking.video import read_image

    h, w = read_image(seq.frames[0]).shape[:2]
    return w, h


def _protocol(benchmark: Benchmark, convention: str) -> str:
    if convention == "pytracking":
        return benchmark.mode
    if benchmark.is_got10k:
        return "got10k"
    return "lasot" if benchmark.mode == "lasot" else "otb"


def _metrics(where: str, pred, gt, mode: str, **kwargs) -> SequenceResult:
    try:
        return sequence_metrics(pred, gt, mode, **kwargs)
    except MetricsError as exc:
        raise ResultError(f"{where}: {exc}") from None


def _as_folders(results, benchmark: Benchmark, names: Sequence[str]) -> list[ResultFolder]:
    folders = []
    for item in results:
        if isinstance(item, ResultFolder):
            folders.append(item)
        elif isinstance(item, tuple):
            label, path = item
            folders.append(ResultFolder.locate(path, benchmark, names, name=label))
        else:
            folders.append(ResultFolder.locate(item, benchmark, names))
    seen: dict[str, int] = {}
    for f in folders:  # distinct display names
        if f.name in seen:
            seen[f.name] += 1
            f.name = f"{f.name} ({seen[f.name]})"
        else:
            seen[f.name] = 1
    return folders


def evaluate(
    results: Iterable[str | os.PathLike | ResultFolder | tuple[str, str | os.PathLike]],
    benchmark: Benchmark,
    *,
    convention: str = "pytracking",
    allow_missing: bool = False,
    pad_short: bool = False,
    sequences: Sequence[str] | None = None,
) -> Report:
    """Score each result folder (a path, ``(name, path)`` or :class:`ResultFolder`) on ``benchmark``.

    Raises :class:`ResultError` naming the tracker and sequence for a missing result (unless
    ``allow_missing``), a malformed / NaN line, a result shorter than the ground truth (unless
    ``pad_short`` on a non-LaSOT benchmark), or what the metrics reject. Warnings (longer
    results cut, time files ignored, missing sequences skipped) are in ``Report.warnings``.
    """
    if convention not in CONVENTIONS:
        raise InputError(f"unknown convention {convention!r}; choose {' or '.join(CONVENTIONS)}")
    if not benchmark.has_ground_truth:
        raise ResultError(
            f"{benchmark.key} has no ground truth after the first frame (the server evaluates it): "
            "make a submission with `mixformerv2 pack` instead"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResultWarning)
        report = _evaluate(results, benchmark, convention, allow_missing, pad_short, sequences)
    report.warnings.extend(str(w.message) for w in caught if issubclass(w.category, ResultWarning))
    for w in caught:
        if not issubclass(w.category, ResultWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return report


def _evaluate(results, benchmark, convention, allow_missing, pad_short, wanted) -> Report:
    dataset = benchmark.open()
    names = sequence_names(dataset)
    if wanted:
        unknown = [s for s in wanted if s not in set(names)]
        if unknown:
            raise InputError(f"sequence(s) not in {benchmark.key}: {', '.join(unknown[:10])}")
        names = list(dict.fromkeys(wanted))
    folders = _as_folders(results, benchmark, names)
    if not folders:
        raise InputError("no result folder given")

    evaluated = list(names)
    for f in folders:
        missing = f.missing(names)
        if missing:
            shown = ", ".join(missing[:10]) + (f" ... ({len(missing)} in all)" if len(missing) > 10 else "")
            if not allow_missing:
                raise ResultError(f"{f.name} ({f.path}): no result for {len(missing)} of {len(names)} "
                                  f"{benchmark.key} sequence(s): {shown}")
            warnings.warn(f"{f.name}: no result for {shown}; those sequences are left out for every tracker",
                          ResultWarning, stacklevel=2)
            evaluated = [n for n in evaluated if n not in set(missing)]
    if not evaluated:
        raise ResultError(f"no {benchmark.key} sequence has a result from every tracker")

    protocol = _protocol(benchmark, convention)
    extra_got = convention == "pytracking" and benchmark.is_got10k
    per: list[dict[str, SequenceResult]] = [{} for _ in folders]
    per_got: list[dict[str, SequenceResult]] = [{} for _ in folders]
    times: list[list[np.ndarray]] = [[] for _ in folders]
    lookup = {n: i for i, n in enumerate(sequence_names(dataset))}
    for name in evaluated:
        seq = dataset[lookup[name]]
        gt = seq.boxes
        n_gt = len(gt)
        visible = target_visible(seq) if protocol == "lasot" and convention == "pytracking" else None
        size = _image_size(seq) if (benchmark.is_got10k and (extra_got or protocol == "got10k")) else None
        cover = (getattr(seq, "extra", {}) or {}).get("cover")
        for k, folder in enumerate(folders):
            where = f"{folder.name}/{name}"
            out = folder.load(name)
            boxes = check_length(out.boxes, n_gt, f"{where} ({folder.box_file(name)})",
                                 mode=benchmark.mode, pad_short=pad_short and protocol != "got10k")
            if out.times is not None:
                times[k].append(out.times)
            if protocol == "got10k":
                per[k][name] = _metrics(where, boxes, gt, "got10k", convention="got10k", image_size=size, cover=cover)
            else:
                per[k][name] = _metrics(where, boxes, gt, protocol, convention=convention, target_visible=visible)
            if extra_got:
                per_got[k][name] = _metrics(where, boxes, gt, "got10k", convention="got10k",
                                            image_size=size, cover=cover)

    columns = GOT_COLUMNS if protocol == "got10k" else MAIN_COLUMNS + (GOT_COLUMNS if extra_got else ())
    trackers = []
    for k, folder in enumerate(folders):
        summary = aggregate(per[k].values())
        got_summary = aggregate(per_got[k].values()) if extra_got else None
        scores, curves = _scores(summary, convention, protocol)
        if got_summary is not None:
            got_scores, got_curves = _scores(got_summary, "got10k", "got10k")
            scores.update(got_scores)
            curves.update({f"got10k_{c}": v for c, v in got_curves.items()})
        trackers.append(TrackerReport(folder.name, folder.path, scores, _fps(times[k]), curves, summary,
                                      got_summary, per[k], per_got[k]))
    return Report(benchmark, convention, columns, trackers, evaluated, protocol)


_RUN_SUFFIX = re.compile(r"^(?P<base>.+)_(?P<run>\d{3})$")


def merge_runs(report: Report) -> Report:
    """Average the runs of a tracker, as pytracking's ``merge_results``: result folders named
    ``<name>_000``, ``<name>_001``, ... (pytracking's ``run_id`` folders) become one row ``<name>``
    with the mean of every score and curve (and the spread of the scores over the runs).

    Every run is scored on the same sequences, so the mean of the runs' aggregates equals
    pytracking's mean of per-sequence curves averaged over runs. Other trackers are kept as they are.
    """
    groups: dict[str, list[TrackerReport]] = {}
    for t in report.trackers:
        match = _RUN_SUFFIX.match(t.name)
        groups.setdefault(match["base"] if match else t.name, []).append(t)
    merged = []
    for base, runs in groups.items():
        if len(runs) == 1:
            merged.append(runs[0])
            continue
        columns = [c for c in runs[0].scores if all(c in r.scores for r in runs)]
        values = {c: np.array([r.scores[c] for r in runs], dtype=np.float64) for c in columns}
        curves = {name: (x, np.mean([r.curves[name][1] for r in runs], axis=0))
                  for name, (x, _) in runs[0].curves.items() if all(name in r.curves for r in runs)}
        fps = [r.fps for r in runs if not math.isnan(r.fps)]
        merged.append(TrackerReport(
            base, runs[0].path.parent, {c: float(v.mean()) for c, v in values.items()},
            float(np.mean(fps)) if fps else math.nan, curves, summary={}, runs=len(runs),
            spread={c: float(v.std()) for c, v in values.items()},
        ))
    return Report(report.benchmark, report.convention, report.columns, merged, report.sequences,
                  report.protocol, list(report.warnings))


def _scores(summary: dict, convention: str, protocol: str) -> tuple[dict, dict]:
    """Table cells (percent) and plot curves of one aggregate() result."""
    if convention == "pytracking":
        scores = {"AUC": summary["AUC"], "OP50": summary["OP50"], "OP75": summary["OP75"],
                  "P-norm": summary["Norm Precision"], "P": summary["Precision"]}
        curves = {
            "success": (PYTRACKING_OVERLAP_THRESHOLDS, np.asarray(summary["auc_curve"], dtype=np.float64)),
            "precision": (PIXEL_THRESHOLDS, np.asarray(summary["prec_curve"], dtype=np.float64)),
            "norm_precision": (PYTRACKING_NORM_THRESHOLDS, np.asarray(summary["norm_prec_curve"], dtype=np.float64)),
        }
        return scores, curves
    if protocol == "got10k":
        succ = np.asarray(summary["succ_curve"], dtype=np.float64) * 100.0
        scores = {"AO": summary["ao"] * 100.0, "SR0.5": summary["sr"] * 100.0, "SR0.75": summary["sr_0.75"] * 100.0}
        return scores, {"success": (GOT10K_GOT_IOU_THRESHOLDS, succ)}
    succ = np.asarray(summary["success_curve"], dtype=np.float64)
    scores = {"AUC": summary["success_score"] * 100.0, "OP50": summary["success_rate"] * 100.0,
              "OP75": float(succ[15]) * 100.0, "P": summary["precision_score"] * 100.0}
    curves = {"success": (GOT10K_IOU_THRESHOLDS, succ * 100.0),
              "precision": (PIXEL_THRESHOLDS, np.asarray(summary["precision_curve"]) * 100.0)}
    if "normalized_precision_score" in summary:
        scores["P-norm"] = summary["normalized_precision_score"] * 100.0
        curves["norm_precision"] = (GOT10K_NORM_THRESHOLDS, np.asarray(summary["normalized_precision_curve"]) * 100.0)
    return scores, curves


def _fps(times: list[np.ndarray]) -> float:
    seconds = sum(float(t[1:].sum()) for t in times)
    frames = sum(len(t) - 1 for t in times)
    return frames / seconds if seconds > 0 else math.nan


# ------------------------------------------------------------------------------------------------
# Plots
# ------------------------------------------------------------------------------------------------

_PLOTS = {
    # curve name -> (file, title, x label, score column shown in the legend)
    "success": ("success_plot.png", "Success plot", "Overlap threshold", "AUC"),
    "precision": ("precision_plot.png", "Precision plot", "Location error threshold [pixels]", "P"),
    "norm_precision": ("norm_precision_plot.png", "Normalized precision plot", "Normalized location error threshold",
                       "P-norm"),
    "got10k_success": ("got10k_success_plot.png", "GOT-10k success plot", "Overlap threshold", "AO"),
}


def write_plots(report: Report, out_dir: str | os.PathLike, dpi: int = 100) -> list[Path]:
    """Success / precision (/ normalised precision, GOT-10k) plots as PNG files in ``out_dir``."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise InputError("plots need matplotlib (pip install matplotlib)") from None
    import io

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for curve, (filename, title, xlabel, column) in _PLOTS.items():
        entries = [(t, t.curves[curve]) for t in report.trackers if curve in t.curves]
        if not entries:
            continue
        if curve == "success" and report.columns == GOT_COLUMNS:
            column = "AO"
        entries.sort(key=lambda e: -(e[0].scores.get(column) or 0.0))
        fig = Figure(figsize=(6.4, 4.8))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        for tracker, (x, y) in entries:
            score = tracker.scores.get(column)
            label = tracker.name + (f" ({tracker.runs} runs)" if tracker.runs > 1 else "") + (f" [{score:.1f}]" if score is not None and not math.isnan(score) else "")
            ax.plot(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), linewidth=2, label=label)
        ax.set_title(f"{title} — {report.benchmark.key}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("Overlap precision [%]" if "success" in curve else "Distance precision [%]")
        ax.set_xlim(float(np.min(entries[0][1][0])), float(np.max(entries[0][1][0])))
        ax.set_ylim(0, 100)
        ax.grid(True, linestyle=":")
        ax.legend(loc="lower left" if "success" in curve else "lower right", fontsize="small")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi)
        written.append(atomic_write_bytes(out / filename, buffer.getvalue()))
    return written
