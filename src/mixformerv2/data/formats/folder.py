"""Custom data: folders of images with a ``groundtruth.txt``.

``root`` is either one sequence or a folder of sequences::

    <seq>/0001.jpg 0002.jpg ...   images (any of IMAGE_EXTENSIONS, natural-sorted); or <seq>/img/...
    <seq>/groundtruth.txt         x,y,w,h per frame (comma, tab or space), or one line for frame 0
    <seq>/absence.label           optional, 0/1 per frame (1 = target absent)
    <seq>/visible.txt             optional, 0/1 per frame (1 = target visible)

A single ``groundtruth.txt`` line annotates the first frame only (the rest is NaN). visible =
a valid box, and not absent, and visible per ``visible.txt`` when those files exist.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np

from ...errors import InputError
from ...tracking.video import IMAGE_EXTENSIONS
from ..sequence import Sequence, check_root, natural_sorted, read_boxes, read_flags

GROUNDTRUTH = "groundtruth.txt"


def _index(index: int, length: int) -> int:
    try:
        i = int(index)
    except (TypeError, ValueError):
        raise TypeError(f"sequence index must be an int or a sequence name, got {type(index).__name__}") from None
    if i < 0:
        i += length
    if not 0 <= i < length:
        raise IndexError(f"sequence index {index} out of range for {length} sequences")
    return i


def _images(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]
    except OSError as exc:
        raise InputError(f"cannot list {folder}: {exc}") from None


class FolderDataset:
    """Reader for custom sequences: ``FolderDataset(root)`` (one sequence or a folder of them)."""

    name = "folder"

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = check_root(root, "folder dataset")
        if (self.root / GROUNDTRUTH).is_file():
            self._folders = [self.root]
        else:
            with os.scandir(self.root) as entries:
                subdirs = [Path(e.path) for e in entries if e.is_dir()]
            self._folders = natural_sorted([d for d in subdirs if (d / GROUNDTRUTH).is_file()])
            if not self._folders:
                if _images(self.root):
                    raise InputError(f"{self.root}: folder has images but no {GROUNDTRUTH}")
                what = "empty folder" if not any(self.root.iterdir()) else "no sequence found"
                raise InputError(
                    f"{self.root}: {what}: expected images with a {GROUNDTRUTH}, or sub-folders that each "
                    f"hold images and a {GROUNDTRUTH}"
                )
        self.sequence_names: list[str] = [f.name for f in self._folders]
        self._lookup = {n: i for i, n in enumerate(self.sequence_names)}

    @property
    def is_video(self) -> bool:
        return True

    def __len__(self) -> int:
        return len(self._folders)

    def __iter__(self) -> Iterator[Sequence]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"FolderDataset(root={str(self.root)!r}, {len(self)} sequence{'s' if len(self) != 1 else ''})"

    def __getitem__(self, index: int | str) -> Sequence:
        if isinstance(index, str):
            if index not in self._lookup:
                raise KeyError(f"no sequence {index!r} in {self!r}")
            index = self._lookup[index]
        folder = self._folders[_index(index, len(self))]
        images = _images(folder)
        if not images and (folder / "img").is_dir():
            images = _images(folder / "img")
        if not images:
            raise InputError(
                f"{folder}: no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in the folder or its img/ sub-folder"
            )
        frames = natural_sorted(images)
        n = len(frames)
        gt_path = folder / GROUNDTRUTH
        boxes = read_boxes(gt_path)
        if len(boxes) == 1 and n > 1:
            boxes = np.vstack([boxes, np.full((n - 1, 4), np.nan)])
        elif len(boxes) != n:
            raise InputError(
                f"{gt_path}: {len(boxes)} lines but {n} images in {frames[0].parent} "
                f"(give one box per image, or a single line for the first frame)"
            )
        visible = np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
        if (folder / "absence.label").is_file():
            visible &= read_flags(folder / "absence.label", length=n) == 0
        if (folder / "visible.txt").is_file():
            visible &= read_flags(folder / "visible.txt", length=n) != 0
        return Sequence(name=folder.name, frames=frames, boxes=boxes, visible=visible, dataset=self.name)
