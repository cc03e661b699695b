"""Need for Speed (NfS), as downloaded: 100 videos at 240 fps with 30 fps versions.

Layout::

    <root>/<video>/30/<video>/00001.jpg ...     frames of the 30 fps version (240: <root>/<video>/240/...)
    <root>/<video>/30/<video>.txt               one whitespace-separated row per annotated frame:
                                                <track id> <x1> <y1> <x2> <y2> ... (label etc. follow)

Boxes are columns 1-4 (left, top, right, bottom), turned into x, y, w = x2 - x1, h = y2 - y1. As in
the GOT-10k toolkit's NfS reader (``got10k/datasets/nfs.py``): when a 30 fps file holds the 240 fps
annotations (about 8 rows a frame) every 8th row is kept, and a count that still differs from the
number of frames by one is cut to the shorter of the two.

The pytracking layout (the one the MixFormer / pytracking test scripts read, 30 fps only) is
recognised too, and its sequences are named as there, ``nfs_<video>`` (so pytracking result files
``nfs_<video>.txt`` match)::

    <root>/sequences/<video>/00001.jpg ...
    <root>/anno/nfs_<video>.txt                 one ``x y w h`` row per frame (spaces, tabs or commas)

visible = a valid box (w > 0, h > 0).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputError
from ...tracking.video import natural_key
from ..sequence import Sequence, check_root, list_frames, numbered_lines, read_boxes, valid_boxes
from .base import IndexedDataset

FPS = (30, 240)


def read_nfs_boxes(path: Path) -> np.ndarray:
    """An NfS annotation file -> (N, 4) x,y,w,h; a short or non-numeric row raises InputError naming
    the file and line."""
    rows = []
    for number, line in numbered_lines(path):
        parts = line.split()
        if len(parts) < 5:
            raise InputError(f"{path}:{number}: expected '<id> <x1> <y1> <x2> <y2> ...', got {line!r}")
        try:
            x1, y1, x2, y2 = (float(v) for v in parts[1:5])
        except ValueError:
            raise InputError(f"{path}:{number}: not a number in columns 2-5 of {line!r}") from None
        rows.append([x1, y1, x2 - x1, y2 - y1])
    if not rows:
        raise InputError(f"{path}: no boxes")
    return np.asarray(rows, dtype=np.float64)


class NfS(IndexedDataset):
    """NfS reader: ``NfS(root, fps=30)``; the sequences are the ``<video>`` folders of ``root`` that
    hold ``<fps>/<video>.txt``, or, when ``root`` has ``anno/`` and ``sequences/`` (pytracking's
    layout), the ``anno/nfs_<video>.txt`` files."""

    name = "nfs"
    title = "NfS"

    def __init__(self, root: str | os.PathLike, fps: int = 30) -> None:
        self.root = check_root(root, "NfS")
        if fps not in FPS:
            raise InputError(f"NfS fps must be 30 or 240, got {fps!r}")
        self.fps = int(fps)
        self.pytracking_layout = (self.root / "anno").is_dir() and (self.root / "sequences").is_dir()
        if self.pytracking_layout and self.fps != 30:
            raise InputError(f"{self.root}: the pytracking NfS layout (anno/, sequences/) holds the 30 fps version only")
        self._build_index()

    def _list_names(self) -> list[str]:
        if self.pytracking_layout:
            names = [p.stem for p in (self.root / "anno").glob("nfs_*.txt")]
            if not names:
                raise InputError(f"{self.root / 'anno'}: no nfs_<video>.txt annotation files")
            return sorted(names, key=natural_key)
        with os.scandir(self.root) as entries:
            names = [e.name for e in entries if e.is_dir() and self._anno(e.name).is_file()]
        if not names:
            raise InputError(
                f"{self.root}: no NfS sequences found (expected <root>/<video>/{self.fps}/<video>.txt "
                f"and <root>/<video>/{self.fps}/<video>/00001.jpg ...)"
            )
        return sorted(names, key=natural_key)

    def _anno(self, name: str) -> Path:
        return self.root / name / str(self.fps) / f"{name}.txt"

    def _repr_options(self) -> dict[str, Any]:
        return {"fps": self.fps}

    def _load(self, index: int) -> Sequence:
        name = self.sequence_names[index]
        if self.pytracking_layout:
            return self._load_pytracking(name)
        anno = self._anno(name)
        frames = list_frames(anno.parent / name, {".jpg"})
        boxes = read_nfs_boxes(anno)
        n = len(frames)
        if len(boxes) != n and abs(len(boxes) / n - 8) < 1:  # 240 fps rows for 30 fps frames
            boxes = boxes[::8]
        if abs(len(boxes) - n) == 1:
            n = min(n, len(boxes))
            frames, boxes = frames[:n], boxes[:n]
        if len(boxes) != n:
            raise InputError(f"{anno}: {len(boxes)} boxes for {n} frames in {anno.parent / name}")
        return self._sequence(name, frames, boxes, valid_boxes(boxes))

    def _load_pytracking(self, name: str) -> Sequence:
        anno = self.root / "anno" / f"{name}.txt"
        folder = self.root / "sequences" / name[len("nfs_"):]
        frames = list_frames(folder, {".jpg"})
        boxes = read_boxes(anno)
        if len(frames) < len(boxes):
            raise InputError(f"{anno}: {len(boxes)} boxes for {len(frames)} frames in {folder}")
        # pytracking reads frames 1..endFrame, the annotated ones; later files are not part of the sequence
        frames = frames[: len(boxes)]
        return self._sequence(name, frames, boxes, valid_boxes(boxes))
