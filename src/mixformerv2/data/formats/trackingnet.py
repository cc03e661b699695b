"""TrackingNet.

Layout::

    <root>/TRAIN_<k>/anno/<video>.txt            x,y,w,h per line (comma)
    <root>/TRAIN_<k>/frames/<video>/0.jpg ...    (0-based, no padding)
    <root>/TEST/anno/<video>.txt                 first box only
    <root>/TEST/frames/<video>/0.jpg ...

visible = a valid box (w > 0, h > 0); TEST boxes after the first frame are NaN. Indexing lists
the ``anno`` folders only; annotation files are read in ``__getitem__``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ...errors import InputError
from ...tracking.video import natural_key
from ..sequence import Sequence, check_root, list_frames, numbered_lines, pad_first_box, read_boxes, valid_boxes
from .base import IndexedDataset

LAYOUT = "<root>/TRAIN_<k>/{anno/<video>.txt, frames/<video>/<i>.jpg} or <root>/TEST/..."
CLASS_MAP = "trackingnet_classmap.txt"


def _chunk_name(chunk: int | str) -> str:
    if isinstance(chunk, str):
        if chunk.upper() == "TEST":
            return "TEST"
        if re.fullmatch(r"(TRAIN_)?\d+", chunk, flags=re.IGNORECASE):
            return f"TRAIN_{int(chunk.upper().removeprefix('TRAIN_'))}"
        raise InputError(f"TrackingNet chunk must be an int, 'TRAIN_<k>' or 'TEST', got {chunk!r}")
    if isinstance(chunk, (int, np.integer)) and not isinstance(chunk, bool):
        return f"TRAIN_{int(chunk)}"
    raise InputError(f"TrackingNet chunk must be an int, 'TRAIN_<k>' or 'TEST', got {chunk!r}")


class TrackingNet(IndexedDataset):
    """TrackingNet reader: ``TrackingNet(root, chunks=None, class_map=None)``.

    ``chunks``: None (every ``TRAIN_<k>`` folder present), a list of ints (``[0, 1]`` means
    ``TRAIN_0``, ``TRAIN_1``), or ``'TEST'``. ``class_map``: optional tab-separated
    ``<video>\\t<class>`` file (default: ``<root>/trackingnet_classmap.txt`` if present).
    """

    name = "trackingnet"
    title = "TrackingNet"

    def __init__(
        self,
        root: str | os.PathLike,
        chunks: Iterable[int | str] | int | str | None = None,
        class_map: str | os.PathLike | None = None,
    ) -> None:
        self.root = check_root(root, "TrackingNet")
        self.chunks: list[str] = self._chunk_names(chunks)
        self._entries: list[tuple[str, str]] = []  # (chunk, video)
        self._build_index()
        self._classes = self._read_class_map(class_map)

    def _chunk_names(self, chunks: Iterable[int | str] | int | str | None) -> list[str]:
        if chunks is None:
            with os.scandir(self.root) as entries:
                names = [e.name for e in entries if e.is_dir() and re.fullmatch(r"TRAIN_\d+", e.name)]
            if not names:
                extra = " (only TEST/ is present: pass chunks='TEST')" if (self.root / "TEST").is_dir() else ""
                raise InputError(f"{self.root}: no TRAIN_<k> folders, not a TrackingNet root (expected {LAYOUT}){extra}")
            return sorted(names, key=natural_key)
        if isinstance(chunks, (str, int, np.integer)):
            chunks = [chunks]
        chunk_names = list(dict.fromkeys(_chunk_name(c) for c in chunks))
        if not chunk_names:
            raise InputError("TrackingNet: empty list of chunks")
        missing = [c for c in chunk_names if not (self.root / c).is_dir()]
        if missing:
            raise InputError(f"{self.root}: TrackingNet chunk folder(s) not found: {', '.join(missing)}")
        return chunk_names

    def _list_names(self) -> list[str]:
        for chunk in self.chunks:
            anno = self.root / chunk / "anno"
            if not anno.is_dir():
                raise InputError(f"{anno}: missing TrackingNet annotation folder (expected {LAYOUT})")
            with os.scandir(anno) as entries:
                videos = sorted((e.name[:-4] for e in entries if e.name.endswith(".txt") and e.is_file()), key=natural_key)
            if not videos:
                raise InputError(f"{anno}: no annotation files (<video>.txt)")
            self._entries.extend((chunk, v) for v in videos)
        return [v for _, v in self._entries]

    def _read_class_map(self, class_map: str | os.PathLike | None) -> dict[str, str]:
        path = self.root / CLASS_MAP if class_map is None else Path(class_map)
        if class_map is None and not path.is_file():
            return {}
        mapping = {}
        for number, line in numbered_lines(path):
            parts = line.split("\t")
            if len(parts) < 2:
                raise InputError(f"{path}:{number}: expected '<video><TAB><class>', got {line!r}")
            mapping[parts[0].strip()] = parts[1].strip()
        return mapping

    # -- reader protocol --------------------------------------------------------------------------
    def _repr_options(self) -> dict[str, Any]:
        return {"chunks": self.chunks}

    def _load(self, index: int) -> Sequence:
        chunk, video = self._entries[index]
        anno = self.root / chunk / "anno" / f"{video}.txt"
        frame_dir = self.root / chunk / "frames" / video
        boxes = read_boxes(anno)
        if chunk == "TEST":
            if not frame_dir.is_dir():
                raise InputError(f"{frame_dir}: missing TrackingNet frame folder")
            frames = list_frames(frame_dir, {".jpg"})
            boxes = pad_first_box(boxes, len(frames))
            if len(boxes) != len(frames):
                raise InputError(f"{anno}: {len(boxes)} boxes for {len(frames)} frames in {frame_dir}")
        else:
            frames = [frame_dir / f"{i}.jpg" for i in range(len(boxes))]
        return self._sequence(
            video, frames, boxes, valid_boxes(boxes), object_class=self._classes.get(video), extra={"chunk": chunk}
        )
