"""Run a tracker over every sequence of a benchmark and write the standard result files.

Layout: ``<results>/<name>/<benchmark key>/<seq>.txt`` (one ``x,y,w,h`` line per frame, frame
0 = the initial box; 4 decimals, or truncated integers like the official writer) and
``<seq>_time.txt`` (``%f`` seconds per frame: ``init`` for frame 0, ``update`` after; image
reading excluded, as pytracking). Every benchmark, GOT-10k and TrackingNet included, gets its
own ``<benchmark key>`` folder; a ``run.json`` there records the settings.

* parallel over sequences: a ``spawn`` process pool of ``workers`` processes, each with
  ``torch.set_num_threads(max(1, cores // workers))`` (CUDA: worker k uses GPU k mod #GPUs);
* resumable: a sequence whose ``<seq>.txt`` exists with one line per frame is skipped; files
  are written to a temp file and renamed (time file first), so a killed run leaves no
  half-written result, and its stale temp files are removed when the sequence is re-run;
* a failing sequence is reported with its name and counted; the others still run;
* trackers: ``mixformerv2`` (a checkpoint, with the official per-benchmark update interval and
  search factor unless overridden) or an OpenCV baseline (``csrt``, ``kcf``, ``mil``); from
  Python any picklable factory of an object with the OpenCV contract.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import InputError, MixFormerError
from ..fileio import atomic_write_text
from .results import (
    Benchmark,
    ResultError,
    format_boxes,
    format_times,
    read_result_boxes,
    sequence_names,
    stale_temp_files,
)

__all__ = ["BASELINES", "TRACKERS", "RunSummary", "SequenceOutcome", "TrackerSpec", "run_benchmark"]

BASELINES = ("csrt", "kcf", "mil")
TRACKERS = ("mixformerv2",) + BASELINES
RUN_INFO = "run.json"


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# ------------------------------------------------------------------------------------------------
# What to run (picklable, rebuilt in each worker)
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackerSpec:
    """How to build the tracker: ``kind`` in :data:`TRACKERS`, or ``factory`` (any picklable
    zero-argument callable returning an object with ``init(frame, box)`` / ``update(frame)``)."""

    kind: str = "mixformerv2"
    weights: str | None = None
    preset: str | None = None
    device: str = "cpu"
    dataset: str | None = None  # benchmark key for TrackerConfig.for_dataset
    search_factor: float | None = None
    update_interval: int | None = None
    factory: Callable[[], object] | None = None
    runtime: str | None = None  # runtimes.RUNTIMES; None: auto
    hold_below: float | None = None  # TrackerConfig.hold_below; None: the weights' default
    max_scale_change: float | None = None  # TrackerConfig.max_scale_change; None: the weights' default

    def build(self, device: str | None = None) -> Callable[[], object]:
        """A ``make()`` that returns a tracker ready for ``init`` (one model load per process)."""
        if self.factory is not None:
            return self.factory
        if self.kind in BASELINES:
            from .compare import OpenCVTracker

            OpenCVTracker(self.kind)  # fail early without the contrib build
            return lambda: OpenCVTracker(self.kind)
        if self.kind != "mixformerv2":
            raise InputError(f"unknown tracker {self.kind!r}; choose one of {', '.join(TRACKERS)}")
        tracker = self.load(device)
        return lambda: tracker  # init() resets every per-sequence state

    def load(self, device: str | None = None):
        from ..tracking.tracker import Tracker

        tracker = Tracker.from_checkpoint(
            _weights_path(self), preset=self.preset, device=device or self.device, dataset=self.dataset,
            runtime=self.runtime,
        )
        tracker.config = tracker.config.overridden(
            search_factor=None if self.search_factor is None else float(self.search_factor),
            update_interval=None if self.update_interval is None else int(self.update_interval),
            hold_below=None if self.hold_below is None else float(self.hold_below),
            max_scale_change=None if self.max_scale_change is None else float(self.max_scale_change),
        )
        return tracker


@dataclass
class SequenceOutcome:
    name: str
    status: str  # "done" | "skipped" | "failed"
    frames: int = 0
    seconds: float = 0.0  # tracking time of frames 1.. (init excluded)
    error: str | None = None

    @property
    def fps(self) -> float:
        return (self.frames - 1) / self.seconds if self.seconds > 0 else math.nan


@dataclass
class RunSummary:
    out_dir: Path
    outcomes: list[SequenceOutcome] = field(default_factory=list)

    def _with(self, status: str) -> list[SequenceOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def done(self) -> list[str]:
        return [o.name for o in self._with("done")]

    @property
    def skipped(self) -> list[str]:
        return [o.name for o in self._with("skipped")]

    @property
    def failed(self) -> dict[str, str]:
        return {o.name: o.error or "" for o in self._with("failed")}

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def fps(self) -> float:
        done = self._with("done")
        seconds = sum(o.seconds for o in done)
        return sum(o.frames - 1 for o in done) / seconds if seconds > 0 else math.nan

    def describe(self) -> str:
        parts = [f"{len(self.done)} sequence(s) tracked"]
        if self.done and not math.isnan(self.fps):
            parts[0] += f" ({self.fps:.1f} FPS)"
        parts.append(f"{len(self.skipped)} already done (skipped)")
        parts.append(f"{len(self.failed)} failed")
        text = ", ".join(parts) + f"; results in {self.out_dir}"
        for name, error in self.failed.items():
            text += f"\n  failed: {name}: {error}"
        return text


# ------------------------------------------------------------------------------------------------
# One sequence (in a worker or in-process)
# ------------------------------------------------------------------------------------------------


class _Job:
    def __init__(self, benchmark: Benchmark, spec: TrackerSpec, out_dir: Path, integer_boxes: bool,
                 make: Callable[[], object] | None = None, device: str | None = None, dataset=None) -> None:
        self.dataset = dataset if dataset is not None else benchmark.open()
        self.make = make if make is not None else spec.build(device)
        self.out_dir = out_dir
        self.integer_boxes = integer_boxes

    def run(self, item: tuple[int, str]) -> SequenceOutcome:
        index, name = item
        try:
            return self._track(self.dataset[index])
        except KeyboardInterrupt:
            raise
        except MixFormerError as exc:
            return SequenceOutcome(name, "failed", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - any tracker/reader failure is reported per sequence
            return SequenceOutcome(name, "failed", error=f"{type(exc).__name__}: {exc}")

    def _track(self, seq) -> SequenceOutcome:
        from .compare import run_tracker

        if len(seq) == 0:
            raise InputError("sequence has no frames")
        init = np.asarray(seq.boxes[0], dtype=np.float64)
        if not (np.isfinite(init).all() and init[2] > 0 and init[3] > 0):
            raise InputError(f"first-frame box {init.tolist()} is not a valid x,y,w,h box")
        for stale in stale_temp_files(self.out_dir, f"{seq.name}.txt") + stale_temp_files(
            self.out_dir, f"{seq.name}_time.txt"
        ):
            stale.unlink(missing_ok=True)
        run = run_tracker(self.make(), seq.frames_rgb(), init)
        if len(run.boxes) != len(seq):
            raise InputError(f"tracked {len(run.boxes)} frames of {len(seq)}")
        bad = ~np.isfinite(run.boxes).all(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"the tracker returned a non-finite box on frame {i}: {run.boxes[i].tolist()}")
        atomic_write_text(self.out_dir / f"{seq.name}_time.txt", format_times(run.seconds))
        atomic_write_text(self.out_dir / f"{seq.name}.txt", format_boxes(run.boxes, integer=self.integer_boxes))
        return SequenceOutcome(seq.name, "done", frames=len(seq), seconds=float(run.seconds[1:].sum()))


_WORKER_JOB: _Job | None = None
_WORKER_ERROR: str | None = None


def _init_worker(benchmark: Benchmark, spec: TrackerSpec, out_dir: Path, integer_boxes: bool,
                 threads: int) -> None:
    # An exception escaping a Pool initializer makes the pool respawn workers forever: keep it
    # and report it for every sequence this worker is given instead.
    global _WORKER_JOB, _WORKER_ERROR
    try:
        import torch

        torch.set_num_threads(threads)
        device = spec.device
        if device.startswith("cuda") and ":" not in device and torch.cuda.device_count() > 1:
            identity = multiprocessing.current_process()._identity
            worker = identity[0] - 1 if identity else 0
            device = f"cuda:{worker % torch.cuda.device_count()}"
        _WORKER_JOB = _Job(benchmark, spec, out_dir, integer_boxes, device=device)
    except Exception as exc:  # noqa: BLE001
        _WORKER_ERROR = f"worker set-up failed: {type(exc).__name__}: {exc}"


def _run_in_worker(item: tuple[int, str]) -> SequenceOutcome:
    if _WORKER_JOB is None:
        return SequenceOutcome(item[1], "failed", error=_WORKER_ERROR or "worker set-up failed")
    return _WORKER_JOB.run(item)


# ------------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------------


def _line_count(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def _weights_path(spec: TrackerSpec) -> Path:
    if spec.weights:
        return Path(spec.weights)
    from ..demo import default_weights

    return default_weights()


def _settings(spec: TrackerSpec, benchmark: Benchmark, integer_boxes: bool, tracker=None) -> dict:
    info: dict = {"tracker": spec.kind if spec.factory is None else getattr(spec.factory, "__qualname__", "custom"),
                  "benchmark": benchmark.key, "integer_boxes": bool(integer_boxes)}
    if tracker is not None:
        weights = _weights_path(spec)
        info.update(
            weights=weights.name,
            weights_bytes=weights.stat().st_size,
            model=tracker.model_config.to_dict(),
            search_factor=float(tracker.config.search_factor),
            template_factor=float(tracker.config.template_factor),
            update_interval=int(tracker.config.update_interval),
            hold_below=tracker.config.hold_below,  # folders from before it existed lack it: not compared
            max_scale_change=tracker.config.max_scale_change,
            runtime=tracker.runtime.name,
        )
    return info


def _check_settings(out_dir: Path, settings: dict, overwrite: bool) -> None:
    path = out_dir / RUN_INFO
    if path.is_file() and not overwrite:
        try:
            previous = json.loads(path.read_text()).get("settings", {})
        except (OSError, ValueError):
            previous = {}
        changed = sorted(k for k in settings if k in previous and previous[k] != settings[k])
        if changed:
            diff = "; ".join(f"{k}: {previous[k]!r} -> {settings[k]!r}" for k in changed)
            raise InputError(
                f"{out_dir} holds results made with other settings ({diff}); use another --name, or "
                "--overwrite to re-run every sequence"
            )


def run_benchmark(
    benchmark: Benchmark,
    results_root: str | os.PathLike,
    *,
    tracker: str = "mixformerv2",
    name: str | None = None,
    weights: str | os.PathLike | None = None,
    preset: str | None = None,
    device: str = "cpu",
    workers: int = 1,
    search_factor: float | None = None,
    update_interval: int | None = None,
    hold_below: float | None = None,
    max_scale_change: float | None = None,
    integer_boxes: bool = False,
    sequences: Sequence[str] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    factory: Callable[[], object] | None = None,
    log: Callable[[str], None] | None = None,
    runtime: str | None = None,
) -> RunSummary:
    """Track every (or each named) sequence of ``benchmark``; see the module docstring.

    ``name``: the tracker folder under ``results_root`` (default: ``opencv_<tracker>`` for the
    OpenCV baselines, ``mixformerv2_<weights stem>`` for checkpoints). ``factory`` must be
    picklable (a module-level function or class) when ``workers > 1``. ``overwrite`` re-runs finished
    sequences. Returns a :class:`RunSummary`; failures are in ``summary.failed``.
    """
    from tqdm import tqdm

    kind = tracker.lower()
    if factory is None and kind not in TRACKERS:
        raise InputError(f"unknown tracker {tracker!r}; choose one of {', '.join(TRACKERS)}")
    if kind in BASELINES and (weights or preset or search_factor is not None or update_interval is not None
                              or hold_below is not None or max_scale_change is not None):
        raise InputError(f"--weights/--preset/--search-factor/--update-interval/--hold-below/--max-scale-change apply "
                         f"to mixformerv2, not {kind}")
    if not isinstance(workers, int) or workers < 1:
        raise InputError(f"--workers must be a positive integer (got {workers!r})")
    if kind in BASELINES and runtime is not None:
        raise InputError(f"--runtime applies to mixformerv2, not {kind}")
    spec = TrackerSpec(kind, str(weights) if weights else None, preset, str(device), benchmark.key,
                       search_factor, update_interval, factory, runtime, hold_below, max_scale_change)

    # fail early (bad weights, OpenCV without the contrib trackers), before any worker starts
    main_tracker = spec.load() if factory is None and kind == "mixformerv2" else None
    if factory is None and kind in BASELINES:
        spec.build()
    if name is None:
        if factory is not None:
            name = getattr(factory, "__name__", "custom")
        elif main_tracker is not None:
            stem = _weights_path(spec).name
            for suffix in (".safetensors", ".tar", ".pth", ".pt", ".bin"):
                stem = stem.removesuffix(suffix)
            name = stem if stem.lower().startswith("mixformerv2") else f"mixformerv2_{stem}"
        else:
            name = f"opencv_{kind}"
    if not name or any(c in name for c in "/\\") or name in (".", ".."):
        raise InputError(f"invalid tracker name {name!r} (one folder name)")

    dataset = benchmark.open()
    names = sequence_names(dataset)
    indices = list(range(len(names)))
    if sequences:
        lookup = {n: i for i, n in enumerate(names)}
        unknown = [s for s in sequences if s not in lookup]
        if unknown:
            raise InputError(f"sequence(s) not in {benchmark.key}: {', '.join(unknown[:10])}")
        indices = [lookup[s] for s in dict.fromkeys(sequences)]
    if not indices:
        raise InputError(f"{benchmark.key}: no sequences to run")

    out_dir = Path(results_root) / name / benchmark.key
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = _settings(spec, benchmark, integer_boxes, main_tracker)
    _check_settings(out_dir, settings, overwrite)
    atomic_write_text(out_dir / RUN_INFO, json.dumps(
        {"settings": settings, "dataset_root": str(benchmark.root), "options": benchmark.options,
         "device": str(device), "workers": workers, "started": time.strftime("%Y-%m-%d %H:%M:%S")},
        indent=2, default=str) + "\n")

    say = log or (lambda msg: tqdm.write(msg, file=sys.stderr))
    summary = RunSummary(out_dir)
    todo = []
    for i in indices:
        result = out_dir / f"{names[i]}.txt"
        if result.is_file() and not overwrite:
            try:
                n_lines, n_frames = _line_count(result), len(dataset[i])
            except Exception:  # noqa: BLE001 - unreadable sequence: run it and let it report
                n_lines, n_frames = -1, -2
            if n_lines == n_frames:
                try:
                    read_result_boxes(result)
                except ResultError as exc:
                    say(f"warning: {exc}; re-running {names[i]}")
                else:
                    summary.outcomes.append(SequenceOutcome(names[i], "skipped", frames=n_frames))
                    continue
            elif n_lines >= 0:
                say(f"warning: {result} has {n_lines} lines for {n_frames} frames; re-running {names[i]}")
        todo.append(i)

    bar = tqdm(total=len(todo), unit="seq", desc=f"{name}/{benchmark.key}", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)

    def record(outcome: SequenceOutcome) -> None:
        summary.outcomes.append(outcome)
        if outcome.status == "failed":
            say(f"sequence {outcome.name} failed: {outcome.error}")
        bar.update(1)
        n_failed = len(summary.failed)
        if n_failed:
            bar.set_postfix(failed=n_failed)

    try:
        if not todo:
            pass
        elif workers == 1 or len(todo) == 1:
            make = spec.build() if main_tracker is None else (lambda: main_tracker)
            job = _Job(benchmark, spec, out_dir, integer_boxes, make=make, dataset=dataset)
            for i in todo:
                record(job.run((i, names[i])))
        else:
            threads = max(1, _cores() // workers)
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(min(workers, len(todo)), initializer=_init_worker,
                          initargs=(benchmark, spec, out_dir, integer_boxes, threads)) as pool:
                for outcome in pool.imap_unordered(_run_in_worker, [(i, names[i]) for i in todo]):
                    record(outcome)
    finally:
        bar.close()
    order = {n: k for k, n in enumerate(names)}
    summary.outcomes.sort(key=lambda o: order.get(o.name, len(order)))
    return summary
