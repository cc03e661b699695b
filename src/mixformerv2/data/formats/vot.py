"""VOT short-term challenge sequences (a VOT-toolkit workspace's ``sequences`` folder).

Layout::

    <root>/list.txt                       sequence names, one per line (else: the folders holding groundtruth.txt)
    <root>/<sequence>/sequence            metadata, key=value per line, e.g. channels.color=color/%08d.jpg
    <root>/<sequence>/color/00000001.jpg  frames: the color channel's pattern, numbered from 1
    <root>/<sequence>/groundtruth.txt     one region per frame

Regions, as the VOT toolkit writes them: ``x,y,w,h`` (an axis-aligned rectangle, VOT2020/2022 box
layout), ``x1,y1,x2,y2,...`` (a polygon of 3 or more points, e.g. a rotated box with 8 values: kept
as its axis-aligned bounding box), a single value (a "special" region: no box, NaN) and ``m...``
(a segmentation mask: not supported yet, an InputError naming the file and line). Without a
``sequence`` file the frames are ``color/%08d.jpg``. The metadata is kept in
``Sequence.extra['metadata']``.

visible = a valid box (w > 0, h > 0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import InputError
from ..sequence import Sequence, numbered_lines, valid_boxes
from .base import FolderListDataset

LAYOUT = "<root>/list.txt and <root>/<sequence>/{sequence, groundtruth.txt, color/00000001.jpg}"
DEFAULT_PATTERN = "color/%08d.jpg"


def parse_region(path: Path, number: int, line: str) -> list[float]:
    """One VOT region line -> x, y, w, h (NaN for a special region)."""
    if line.startswith("m"):
        raise InputError(f"{path}:{number}: segmentation-mask regions ('m...' lines) are not supported yet")
    try:
        values = [float(v) for v in line.split(",")]
    except ValueError:
        raise InputError(f"{path}:{number}: not a number in {line!r}") from None
    if len(values) == 1:
        return [np.nan] * 4
    if len(values) == 4:
        return values
    if len(values) >= 6 and len(values) % 2 == 0:
        points = np.asarray(values).reshape(-1, 2)
        (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
        return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
    raise InputError(
        f"{path}:{number}: expected a rectangle x,y,w,h or a polygon x1,y1,x2,y2,... (6 or more values, "
        f"an even count), got {len(values)} values: {line!r}"
    )


def read_regions(path: Path) -> np.ndarray:
    """A VOT ``groundtruth.txt`` -> (N, 4) x,y,w,h."""
    rows = [parse_region(path, number, line) for number, line in numbered_lines(path)]
    if not rows:
        raise InputError(f"{path}: no regions")
    return np.asarray(rows, dtype=np.float64)


def read_metadata(path: Path) -> dict[str, str]:
    """The ``key=value`` lines of a VOT ``sequence`` file."""
    meta = {}
    for number, line in numbered_lines(path):
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{path}:{number}: expected key=value, got {line!r}")
        meta[key.strip()] = value.strip()
    return meta


class VOT(FolderListDataset):
    """VOT short-term reader: ``VOT(root)`` with ``root`` the folder holding ``list.txt``."""

    name = "vot"
    title = "VOT"
    layout = LAYOUT

    def _load(self, index: int) -> Sequence:
        name = self.sequence_names[index]
        folder = self.root / name
        meta_path = folder / "sequence"
        metadata = read_metadata(meta_path) if meta_path.is_file() else {}
        pattern = metadata.get("channels.color", DEFAULT_PATTERN if not metadata else None)
        if pattern is None:
            channels = [k for k in metadata if k.startswith("channels.")]
            raise InputError(f"{meta_path}: no channels.color entry (channels: {', '.join(channels) or 'none'})")
        boxes = read_regions(folder / "groundtruth.txt")
        try:
            frames = [folder / (pattern % i) for i in range(1, len(boxes) + 1)]
        except (TypeError, ValueError):
            raise InputError(f"{meta_path}: bad frame pattern {pattern!r} (expected e.g. {DEFAULT_PATTERN})") from None
        return self._sequence(name, frames, boxes, valid_boxes(boxes), extra={"metadata": metadata})
