"""Benchmarks and tracking-result folders: reading, validating and writing result files.

A result folder holds one ``<seq>.txt`` per sequence (one ``x,y,w,h`` box per frame, frame 0 =
the initial box) and optionally ``<seq>_time.txt`` (seconds per frame). Layouts understood:

* ours (:mod:`.runner`): ``<results>/<tracker>/<benchmark>/<seq>.txt`` with ``<benchmark>``
  one of :attr:`Benchmark.key` (``lasot``, ``got10k_val``, ``got10k_test``, ``trackingnet``,
  ``otb``, ``uav``, ...); comma-separated floats (4 decimals) or integers;
* pytracking / MixFormer(V2) / OSTrack: ``<results_path>/<tracker>/<param>[_<runid>]/<seq>.txt``,
  tab-separated integers, with the GOT-10k and TrackingNet files in a ``got10k/`` or
  ``trackingnet/`` sub-folder of ``<param>`` (OSTrack's ``running.py`` is pytracking's; some
  OSTrack forks also put LaSOT, UAV, NfS, TNL2K results in a ``<dataset>/`` sub-folder, which
  is found as well). pytracking names UAV123 and NfS sequences ``uav_<seq>`` / ``nfs_<seq>``;
  those prefixes are recognised.

Give :meth:`ResultFolder.locate` the tracker folder (``<results>/<tracker>`` or
``<tracker>/<param>``) or the folder holding the ``.txt`` files itself.

Reading is strict: a malformed, ragged, NaN or infinite line is an error naming the file and
the 1-based line; a result shorter than the ground truth is an error naming the sequence and
both counts (pytracking pads non-LaSOT results with zero boxes; ``pad_short=True`` allows that,
with a warning), a longer one is cut to the ground truth with a warning, as the metrics do.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import InputError

__all__ = [
    "Benchmark",
    "ResultError",
    "ResultFolder",
    "ResultWarning",
    "check_length",
    "format_boxes",
    "format_times",
    "read_result_boxes",
    "read_result_times",
    "resolve_benchmark",
]

BOX_SUFFIX = ".txt"
TIME_SUFFIX = "_time.txt"
# other per-sequence files pytracking/OSTrack may leave beside the boxes
_SIDE_SUFFIXES = (TIME_SUFFIX, "_all_boxes.txt", "_all_scores.txt", "_scores.txt", "_confidence.txt")


class ResultError(InputError):
    """A result folder or file that cannot be evaluated or packed as it is."""


class ResultWarning(UserWarning):
    """Something was tolerated (a longer result cut to the ground truth, a bad time file ignored)."""


# ------------------------------------------------------------------------------------------------
# Benchmarks: a dataset reader + the name used for result folders and tracker settings
# ------------------------------------------------------------------------------------------------

_GOT10K_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Benchmark:
    """One evaluation dataset.

    ``key``: the result sub-folder and the name given to ``TrackerConfig.for_dataset`` (the
    official per-benchmark update intervals / search factors), e.g. ``lasot``, ``got10k_test``.
    ``reader`` / ``root`` / ``options``: what :func:`~mixformerv2.data.formats.open_dataset` gets.
    """

    key: str
    reader: str
    root: Path
    options: dict = field(default_factory=dict)

    def open(self):
        from ..data.formats import open_dataset

        return open_dataset(self.reader, self.root, **self.options)

    @property
    def mode(self) -> str:
        """The pytracking metrics mode: ``lasot`` (with target visibility), ``uav`` or ``otb``."""
        if self.key.startswith("lasot"):
            return "lasot"
        if self.key.startswith("uav"):
            return "uav"
        return "otb"

    @property
    def is_got10k(self) -> bool:
        return self.reader == "got10k"

    @property
    def has_ground_truth(self) -> bool:
        """False for the test splits whose annotations are withheld (GOT-10k, TrackingNet)."""
        return self.key not in ("got10k_test", "trackingnet")

    @property
    def file_prefixes(self) -> tuple[str, ...]:
        """Prefixes of result file names: pytracking names UAV123 / NfS sequences ``uav_<seq>`` / ``nfs_<seq>``."""
        if self.reader == "uav123":
            return ("", "uav_")
        if self.reader == "nfs":
            return ("", "nfs_")
        return ("",)

    @property
    def aliases(self) -> tuple[str, ...]:
        """Sub-folder names that may hold this benchmark's results (ours first, then peers')."""
        names = [self.key]
        if self.is_got10k:
            names.append("got10k")
        if self.key == "lasot":
            names += ["LaSOT", "lasot_test"]
        if self.reader not in names:
            names.append(self.reader)
        return tuple(dict.fromkeys(names))


# benchmark names people use -> registered reader; reader names -> pytracking's result-folder name
_READER_ALIASES = {"uav": "uav123", "otb100": "otb", "otb2015": "otb"}
_KEY_ALIASES = {"uav123": "uav", "otb100": "otb", "otb2015": "otb"}


def _norm(name: str) -> str:
    return str(name).strip().lower().replace("-", "")


def resolve_benchmark(
    name: str, root: str | os.PathLike, split: str | None = None, sequences: Sequence[str] | None = None
) -> Benchmark:
    """The benchmark called ``name`` (``lasot``, ``got10k_val``, ``got10k_test``, ``trackingnet``,
    ``otb``, ``uav``, ``nfs``, ``tnl2k``, ...) with its data in ``root``.

    ``split``: LaSOT ``train``/``test``/``all``/a split file (default: ``test`` when ``root``
    holds ``testing_set.txt`` or any sequence outside the 280-video test set, else every sequence); GOT-10k ``train``/``val``/``test`` (a sub-folder of
    ``root``; default: the name of ``root`` when it is a split folder); TrackingNet chunks
    (``TEST`` by default when ``root/TEST`` exists); other readers get ``split=`` as given.
    ``sequences``: given to readers that open a subset (``sequences=``, e.g. OTB, UAV123, which
    otherwise want every sequence of their table on disk); runners and reports select them too.
    """
    benchmark = _resolve(name, root, split)
    if sequences:
        import inspect

        from ..data.formats import DATASETS

        cls = DATASETS.get(benchmark.reader)
        if cls is not None and "sequences" in inspect.signature(cls).parameters:
            benchmark = Benchmark(benchmark.key, benchmark.reader, benchmark.root,
                                  {**benchmark.options, "sequences": list(sequences)})
    return benchmark


def _resolve(name: str, root: str | os.PathLike, split: str | None) -> Benchmark:
    key = _norm(name)
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"dataset root not found: {root}")
    if key.startswith("got10k"):
        wanted = key[len("got10k"):].lstrip("_") or (split.lower() if split else None)
        if wanted and wanted not in _GOT10K_SPLITS:
            raise InputError(f"unknown GOT-10k split {wanted!r}; expected one of {', '.join(_GOT10K_SPLITS)}")
        if split and wanted and split.lower() != wanted:
            raise InputError(f"--split {split} contradicts the dataset name {name!r}")
        if wanted and not (root / "list.txt").is_file() and (root / wanted).is_dir():
            root = root / wanted
        elif wanted and root.name.lower() in _GOT10K_SPLITS and root.name.lower() != wanted:
            raise InputError(f"{root} is the GOT-10k {root.name} split, but {name!r} needs the {wanted} split")
        if wanted is None and root.name.lower() in _GOT10K_SPLITS:
            wanted = root.name.lower()
        return Benchmark(f"got10k_{wanted}" if wanted else "got10k", "got10k", root)
    if key == "lasot":
        chosen = _lasot_default_split(root) if split is None else (None if split.lower() == "all" else split)
        return Benchmark("lasot", "lasot", root, {"split": chosen} if chosen is not None else {})
    if key == "trackingnet":
        chunks = split if split is not None else ("TEST" if (root / "TEST").is_dir() else None)
        is_test = isinstance(chunks, str) and chunks.upper() == "TEST"
        options = {"chunks": chunks} if chunks is not None else {}
        return Benchmark("trackingnet" if is_test else "trackingnet_train", "trackingnet", root, options)
    reader = _READER_ALIASES.get(key, key)
    key = _KEY_ALIASES.get(key, key)
    return Benchmark(key, reader, root, {"split": split} if split is not None else {})


def _lasot_default_split(root: Path) -> str | None:
    """``'test'`` unless every sequence under ``root`` is a test sequence (the LaSOT test download):
    scoring a full download must never mix the 1120 training videos into the 280-video benchmark."""
    if (root / "testing_set.txt").is_file():
        return "test"
    from ..data.formats.lasot import LASOT_TEST, scan_sequences

    return "test" if scan_sequences(root) - set(LASOT_TEST) else None


def sequence_names(dataset) -> list[str]:
    """Names of a reader's sequences without loading them (``sequence_names`` if it has one)."""
    names = getattr(dataset, "sequence_names", None)
    if names is not None:
        return list(names)
    return [dataset[i].name for i in range(len(dataset))]


def target_visible(seq) -> np.ndarray:
    """pytracking's LaSOT visibility: not fully occluded and not out of view (box validity aside)."""
    from .metrics import lasot_target_visible

    extra = getattr(seq, "extra", {}) or {}
    if "full_occlusion" in extra and "out_of_view" in extra:
        return lasot_target_visible(extra["full_occlusion"], extra["out_of_view"])
    return np.asarray(seq.visible, dtype=bool)


# ------------------------------------------------------------------------------------------------
# Reading and writing files
# ------------------------------------------------------------------------------------------------

_SPLIT = re.compile(r"[,\t ;]+")


def _numbers(path: Path, what: str) -> list[tuple[int, list[str]]]:
    """(1-based line number, fields) of every line; blank lines only at the end are allowed."""
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except FileNotFoundError:
        raise ResultError(f"{what} file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultError(f"cannot read {path}: {exc}") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    rows = []
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped:
            raise ResultError(f"{path}: line {number} is empty (one {what} per line expected)")
        rows.append((number, [f for f in _SPLIT.split(stripped) if f]))
    return rows


def read_result_boxes(path: str | os.PathLike) -> np.ndarray:
    """A result file -> (N, 4) float64; comma, tab, space or semicolon separated, ints or floats.

    Errors name the file and the 1-based line: not 4 values, not a number, NaN or infinite.
    """
    path = Path(path)
    rows = _numbers(path, "box")
    if not rows:
        raise ResultError(f"{path}: empty result file (no boxes)")
    out = np.empty((len(rows), 4), dtype=np.float64)
    for i, (number, fields) in enumerate(rows):
        if len(fields) != 4:
            raise ResultError(
                f"{path}: line {number}: expected 4 values x,y,w,h, got {len(fields)}: {' '.join(fields)!r}"
            )
        try:
            values = [float(v) for v in fields]
        except ValueError:
            raise ResultError(f"{path}: line {number}: not a number in {' '.join(fields)!r}") from None
        if not all(np.isfinite(values)):
            raise ResultError(f"{path}: line {number}: NaN or infinite value in {' '.join(fields)!r}")
        out[i] = values
    return out


def read_result_times(path: str | os.PathLike) -> np.ndarray:
    """A ``<seq>_time.txt`` file -> (N,) float64 seconds (errors name the file and line)."""
    path = Path(path)
    rows = _numbers(path, "time")
    out = np.empty(len(rows), dtype=np.float64)
    for i, (number, fields) in enumerate(rows):
        if len(fields) != 1:
            raise ResultError(f"{path}: line {number}: expected one number of seconds, got {len(fields)} values")
        try:
            out[i] = float(fields[0])
        except ValueError:
            raise ResultError(f"{path}: line {number}: not a number: {fields[0]!r}") from None
        if not np.isfinite(out[i]) or out[i] < 0:
            raise ResultError(f"{path}: line {number}: invalid time {fields[0]!r}")
    return out


def format_boxes(boxes: np.ndarray, integer: bool = False) -> str:
    """One ``x,y,w,h`` line per box: 4 decimals, or truncated integers (numpy ``astype(int)``,
    like the official writer) with ``integer=True``."""
    arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if integer:
        return "".join(",".join(str(int(v)) for v in row) + "\n" for row in arr.astype(np.int64))
    return "".join(",".join(f"{v:.4f}" for v in row) + "\n" for row in arr)


def format_times(seconds: np.ndarray) -> str:
    """One ``%f`` line per frame (pytracking's time files)."""
    return "".join(f"{float(t):f}\n" for t in np.asarray(seconds).reshape(-1))


def stale_temp_files(folder: Path, name: str) -> list[Path]:
    """Temp files :func:`atomic_write_bytes` left for ``name`` in ``folder`` (a killed run)."""
    return [p for p in folder.glob(f".{glob_escape(name)}.*.tmp") if p.is_file()]


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def check_length(
    boxes: np.ndarray, n_gt: int, where: str, *, mode: str = "otb", pad_short: bool = False
) -> np.ndarray:
    """Validate a result's length against the ground truth (``where`` names the sequence).

    Longer: cut to ``n_gt`` with a :class:`ResultWarning`. Shorter: :class:`ResultError`, unless
    ``pad_short`` and ``mode != 'lasot'`` (then returned as is, with a warning; the metrics pad
    it with zero boxes like pytracking).
    """
    n = len(boxes)
    if n > n_gt:
        warnings.warn(f"{where}: {n} result lines for {n_gt} ground-truth frames; the extra lines are ignored",
                      ResultWarning, stacklevel=2)
        return boxes[:n_gt]
    if n < n_gt:
        if pad_short and mode != "lasot":
            warnings.warn(f"{where}: {n} result lines for {n_gt} ground-truth frames; the missing frames count "
                          "as failures (zero boxes)", ResultWarning, stacklevel=2)
            return boxes
        raise ResultError(f"{where}: {n} result lines but the ground truth has {n_gt} frames"
                          + (" (LaSOT results must cover every frame)" if mode == "lasot" else ""))
    return boxes


# ------------------------------------------------------------------------------------------------
# Result folders
# ------------------------------------------------------------------------------------------------


@dataclass
class SequenceOutput:
    boxes: np.ndarray  # (N, 4) as in the file (validated, not length-checked)
    times: np.ndarray | None  # (N,) seconds, None without a (usable) time file


class ResultFolder:
    """The folder holding one tracker's ``<prefix><seq>.txt`` files for one benchmark."""

    def __init__(self, path: str | os.PathLike, name: str | None = None, prefix: str = "") -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise ResultError(f"result folder not found: {self.path}")
        self.name = name or self.path.name
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"ResultFolder({str(self.path)!r}, name={self.name!r})"

    @classmethod
    def locate(
        cls, path: str | os.PathLike, benchmark: Benchmark, expected: Iterable[str], name: str | None = None
    ) -> "ResultFolder":
        """Find the folder with results for ``benchmark`` at or below ``path`` (see module doc)."""
        path = Path(path)
        if not path.is_dir():
            raise ResultError(f"result folder not found: {path}")
        expected = list(expected)
        candidates = [path / a for a in benchmark.aliases] + [path]
        for folder in candidates:
            if not folder.is_dir():
                continue
            files = set(os.listdir(folder))
            for prefix in benchmark.file_prefixes:
                if any(f"{prefix}{n}{BOX_SUFFIX}" in files for n in expected):
                    if name is None:
                        name = path.parent.name if path.name in benchmark.aliases and folder == path else path.name
                    return cls(folder, name, prefix)
        looked = ", ".join(str(c) for c in candidates)
        raise ResultError(f"no result file of any {benchmark.key} sequence under {path} (looked in {looked})")

    def box_file(self, seq: str) -> Path:
        return self.path / f"{self.prefix}{seq}{BOX_SUFFIX}"

    def time_file(self, seq: str) -> Path:
        return self.path / f"{self.prefix}{seq}{TIME_SUFFIX}"

    def has(self, seq: str) -> bool:
        return self.box_file(seq).is_file()

    def sequence_names(self) -> list[str]:
        """Every ``<prefix><seq>.txt`` here, as ``<seq>`` (time / score side files excluded)."""
        return sorted(
            p.name[len(self.prefix) : -len(BOX_SUFFIX)]
            for p in self.path.iterdir()
            if p.is_file() and p.name.endswith(BOX_SUFFIX) and p.name.startswith(self.prefix)
            and not p.name.startswith(".") and not p.name.endswith(_SIDE_SUFFIXES)
        )

    def missing(self, names: Sequence[str]) -> list[str]:
        present = set(os.listdir(self.path))
        return [n for n in names if f"{self.prefix}{n}{BOX_SUFFIX}" not in present]

    def load(self, seq: str, times: bool = True) -> SequenceOutput:
        """Boxes (and times, when a time file with one line per box exists) of ``seq``."""
        box_file = self.box_file(seq)
        if not box_file.is_file():
            raise ResultError(f"{self.name}: no result for sequence {seq!r} ({box_file} is missing)")
        boxes = read_result_boxes(box_file)
        seconds = None
        if times and self.time_file(seq).is_file():
            try:
                seconds = read_result_times(self.time_file(seq))
            except ResultError as exc:
                warnings.warn(f"{self.name}/{seq}: time file ignored: {exc}", ResultWarning, stacklevel=2)
            else:
                if len(seconds) != len(boxes):
                    warnings.warn(
                        f"{self.name}/{seq}: time file ignored: {len(seconds)} lines for {len(boxes)} boxes "
                        f"({self.time_file(seq)})", ResultWarning, stacklevel=2,
                    )
                    seconds = None
        return SequenceOutput(boxes, seconds)
