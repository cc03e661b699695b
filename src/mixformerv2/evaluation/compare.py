"""Run several trackers over the same sequences and score them side by side.

Any object with the OpenCV contract (``init(frame, box)``, ``update(frame) -> (ok, box)``)
works: our :class:`~mixformerv2.tracking.tracker.Tracker` and OpenCV's CSRT / KCF alike.
Frames are RGB uint8.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Protocol, Sequence

import numpy as np

from ..errors import InputError
from .metrics import SequenceResult, aggregate, sequence_metrics


class OpenCVContract(Protocol):
    def init(self, frame: np.ndarray, box: Sequence[float]) -> object: ...

    def update(self, frame: np.ndarray) -> tuple[bool, Sequence[float]]: ...


class OpenCVTracker:
    """OpenCV's classic trackers (``csrt``, ``kcf``, ``mil``) behind the RGB OpenCV contract.

    When OpenCV reports a failure the previous box is kept, so every frame has a box.
    """

    FACTORIES = {"csrt": "TrackerCSRT_create", "kcf": "TrackerKCF_create", "mil": "TrackerMIL_create"}

    def __init__(self, name: str) -> None:
        import cv2

        key = name.lower()
        if key not in self.FACTORIES:
            raise InputError(f"unknown OpenCV tracker {name!r}; available: {sorted(self.FACTORIES)}")
        factory = getattr(cv2, self.FACTORIES[key], None) or getattr(getattr(cv2, "legacy", None), self.FACTORIES[key], None)
        if factory is None:
            raise InputError(
                f"OpenCV tracker {name!r} needs the contrib build of OpenCV (opencv-contrib-python-headless)"
            )
        self.name, self._factory, self._tracker, self._box = key.upper(), factory, None, None

    def init(self, frame: np.ndarray, box: Sequence[float]) -> None:
        import cv2

        self._tracker = self._factory()
        self._box = tuple(float(v) for v in box)
        self._tracker.init(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), tuple(int(round(v)) for v in box))

    def update(self, frame: np.ndarray) -> tuple[bool, tuple[float, ...]]:
        import cv2

        ok, box = self._tracker.update(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        if ok and box[2] > 0 and box[3] > 0:
            self._box = tuple(float(v) for v in box)
        return bool(ok), self._box


@dataclass
class RunResult:
    boxes: np.ndarray  # (N, 4) x, y, w, h; row 0 = the initial box
    seconds: np.ndarray  # (N,) per-frame time of init / update

    @property
    def fps(self) -> float:
        tracked = self.seconds[1:].sum()
        return float((len(self.seconds) - 1) / tracked) if tracked > 0 else float("nan")


def run_tracker(tracker: OpenCVContract, frames: Iterable[np.ndarray], init_box: Sequence[float]) -> RunResult:
    """Initialise on the first frame, then update on every following frame."""
    boxes, seconds = [], []
    for i, frame in enumerate(frames):
        start = time.perf_counter()
        if i == 0:
            tracker.init(frame, init_box)
            box = tuple(float(v) for v in init_box)
        else:
            _, box = tracker.update(frame)
        seconds.append(time.perf_counter() - start)
        boxes.append(box)
    if not boxes:
        raise InputError("no frames to track")
    return RunResult(np.asarray(boxes, dtype=np.float64), np.asarray(seconds))


@dataclass
class Scored:
    name: str
    auc: float  # pytracking success AUC (percent), LaSOT rules when visibility is known
    precision: float
    norm_precision: float
    fps: float
    runs: list[RunResult]
    results: list[SequenceResult] = field(default_factory=list)  # one per sequence, for subsets


def compare_trackers(
    trackers: dict[str, Callable[[], OpenCVContract]],
    sequences: Sequence[tuple[Sequence[np.ndarray], np.ndarray, np.ndarray | None]],
    progress: bool = False,
) -> list[Scored]:
    """Track every (frames, gt_boxes, visible-or-None) sequence with every tracker; score each.

    A fresh tracker is made per sequence. Absent frames (``visible`` False) count as
    failures only through the LaSOT rules, exactly as pytracking scores LaSOT.
    """
    from tqdm import tqdm

    scored = []
    for name, make in trackers.items():
        runs, results = [], []
        for frames, gt, visible in tqdm(sequences, desc=name, disable=not progress, unit="seq"):
            run = run_tracker(make(), frames, gt[0])
            runs.append(run)
            mode = "lasot" if visible is not None else "otb"
            results.append(sequence_metrics(run.boxes, gt, mode=mode, target_visible=visible))
        summary = aggregate(results)
        total_frames = sum(len(r.seconds) - 1 for r in runs)
        total_time = sum(r.seconds[1:].sum() for r in runs)
        scored.append(
            Scored(
                name,
                float(summary["AUC"]),
                float(summary["Precision"]),
                float(summary["Norm Precision"]),
                total_frames / total_time if total_time > 0 else float("nan"),
                runs,
                results,
            )
        )
    return scored


def format_table(scored: Sequence[Scored]) -> str:
    lines = ["| tracker | success AUC | precision@20 | norm. precision | FPS |", "|---|---:|---:|---:|---:|"]
    for s in scored:
        lines.append(f"| {s.name} | {s.auc:.1f} | {s.precision:.1f} | {s.norm_precision:.1f} | {s.fps:.1f} |")
    return "\n".join(lines)


def format_breakdown(scored: Sequence[Scored], groups: Mapping[str, Sequence[bool]]) -> str:
    """Success AUC of each tracker on each named subset of the sequences (``groups``: one mask per
    subset, True for the sequences in it; empty subsets are left out)."""
    lines = ["| sequences | n | " + " | ".join(s.name for s in scored) + " |",
             "|---|---:|" + "---:|" * len(scored)]
    for label, mask in groups.items():
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            continue
        aucs = [float(aggregate([r for r, keep in zip(s.results, mask) if keep])["AUC"]) for s in scored]
        lines.append(f"| {label} | {int(mask.sum())} | " + " | ".join(f"{a:.1f}" for a in aucs) + " |")
    return "\n".join(lines)
