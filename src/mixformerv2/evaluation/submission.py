"""Submission packages for the evaluation servers (GOT-10k test, TrackingNet test).

* GOT-10k: a zip holding ``<seq>/<seq>_001.txt`` (comma-separated ``x,y,w,h`` per frame) and
  ``<seq>/<seq>_time.txt`` (seconds per frame) for every test sequence - the layout of the
  GOT-10k toolkit and of the official ``transform_got10k.py``.
* TrackingNet: a zip holding ``<seq>.txt`` (comma-separated ``x,y,w,h`` per frame) for every
  test sequence (``transform_trackingnet.py``; times are not submitted).

Boxes keep their values (4 decimals; integers stay integers); ``integer_boxes=True`` truncates
like the official transforms. Before anything is written, every test sequence must have a
result with exactly one finite, non-negative-size box per frame (and, for GOT-10k, a time file
of the same length); otherwise a :class:`ResultError` names the sequence(s). The zip is written
to a temp file and renamed, and an existing package is only replaced with ``overwrite``.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..fileio import atomic_write_bytes
from .results import (
    Benchmark,
    ResultError,
    ResultFolder,
    format_boxes,
    format_times,
    read_result_boxes,
    read_result_times,
    resolve_benchmark,
    sequence_names,
)

__all__ = ["SERVERS", "pack", "pack_got10k", "pack_trackingnet"]

SERVERS = ("got10k", "trackingnet")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same results give the same bytes


def _entry(zf: zipfile.ZipFile, name: str, text: str) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, text)


def _shown(names: list[str], limit: int = 10) -> str:
    return ", ".join(names[:limit]) + (f" ... ({len(names)} in all)" if len(names) > limit else "")


def _collect(folder: ResultFolder, dataset, names: list[str], with_times: bool) -> dict[str, tuple]:
    """Validated (boxes, times) per sequence; one ResultError listing every problem."""
    missing = folder.missing(names)
    if missing:
        raise ResultError(f"{folder.path}: no result for {len(missing)} of {len(names)} test sequence(s): "
                          f"{_shown(missing)}")
    problems, out = [], {}
    for index, name in enumerate(names):
        try:
            n_frames = len(dataset[index])
            boxes = read_result_boxes(folder.box_file(name))
            if len(boxes) != n_frames:
                raise ResultError(f"{folder.box_file(name)}: {len(boxes)} lines for {n_frames} frames")
            negative = (boxes[:, 2:] < 0).any(axis=1)
            if negative.any():
                line = int(np.flatnonzero(negative)[0]) + 1
                raise ResultError(f"{folder.box_file(name)}: line {line}: negative width or height")
            times = None
            if with_times:
                if not folder.time_file(name).is_file():
                    raise ResultError(f"{folder.time_file(name)} is missing (the GOT-10k server needs the times)")
                times = read_result_times(folder.time_file(name))
                if len(times) != n_frames:
                    raise ResultError(f"{folder.time_file(name)}: {len(times)} lines for {n_frames} frames")
        except InputError as exc:
            problems.append(f"{name}: {exc}")
            continue
        out[name] = (boxes, times)
    if problems:
        raise ResultError(f"{len(problems)} sequence(s) cannot be submitted:\n  " + "\n  ".join(problems[:20])
                          + (f"\n  ... ({len(problems)} in all)" if len(problems) > 20 else ""))
    return out


def _integer_valued(boxes: np.ndarray) -> bool:
    return bool(np.all(boxes == np.trunc(boxes)))


def _format(boxes: np.ndarray, integer_boxes: bool) -> str:
    return format_boxes(boxes, integer=integer_boxes or _integer_valued(boxes))


def _prepare(results: str | os.PathLike, benchmark: Benchmark, key: str) -> tuple[ResultFolder, object, list[str]]:
    if benchmark.key != key:
        raise InputError(f"the {key.split('_')[0]} server evaluates the {key} split, not {benchmark.key} "
                         f"(root {benchmark.root})")
    dataset = benchmark.open()
    names = sequence_names(dataset)
    folder = ResultFolder.locate(results, benchmark, names)
    return folder, dataset, names


def _write_zip(out: Path, entries: list[tuple[str, str]], overwrite: bool) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, text in entries:
            _entry(zf, name, text)
    if out.exists() and not overwrite:
        raise InputError(f"{out} exists; refusing to overwrite it (pass --overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(out, buffer.getvalue())


def _check_out(out: Path, overwrite: bool) -> None:
    if out.suffix.lower() != ".zip":
        raise InputError(f"{out}: the package must be a .zip file")
    if out.exists() and not overwrite:
        raise InputError(f"{out} exists; refusing to overwrite it (pass --overwrite)")


def pack_got10k(results: str | os.PathLike, root: str | os.PathLike, out: str | os.PathLike | None = None, *,
                overwrite: bool = False, integer_boxes: bool = False) -> Path:
    """GOT-10k test package from a result folder; ``root`` = the GOT-10k root or its ``test`` folder."""
    benchmark = resolve_benchmark("got10k_test", root)
    folder, dataset, names = _prepare(results, benchmark, "got10k_test")
    out = Path(out) if out else folder.path.parent / f"{folder.path.name}.zip"
    _check_out(out, overwrite)
    data = _collect(folder, dataset, names, with_times=True)
    entries = []
    for name in names:
        boxes, times = data[name]
        entries.append((f"{name}/{name}_001.txt", _format(boxes, integer_boxes)))
        entries.append((f"{name}/{name}_time.txt", format_times(times)))
    return _write_zip(out, entries, overwrite)


def pack_trackingnet(results: str | os.PathLike, root: str | os.PathLike, out: str | os.PathLike | None = None, *,
                     overwrite: bool = False, integer_boxes: bool = False) -> Path:
    """TrackingNet test package from a result folder; ``root`` = the TrackingNet root (with ``TEST/``)."""
    benchmark = resolve_benchmark("trackingnet", root, split="TEST")
    folder, dataset, names = _prepare(results, benchmark, "trackingnet")
    out = Path(out) if out else folder.path.parent / f"{folder.path.name}.zip"
    _check_out(out, overwrite)
    data = _collect(folder, dataset, names, with_times=False)
    entries = [(f"{name}.txt", _format(data[name][0], integer_boxes)) for name in names]
    return _write_zip(out, entries, overwrite)


def pack(server: str, results: str | os.PathLike, root: str | os.PathLike, out: str | os.PathLike | None = None,
         **kwargs) -> Path:
    """``server`` in :data:`SERVERS`; see :func:`pack_got10k` / :func:`pack_trackingnet`."""
    key = server.lower().replace("-", "").replace("_test", "")
    if key == "got10k":
        return pack_got10k(results, root, out, **kwargs)
    if key == "trackingnet":
        return pack_trackingnet(results, root, out, **kwargs)
    raise InputError(f"unknown server {server!r}; choose one of {', '.join(SERVERS)}")
