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

from ...errors import InputError
from ...tracking.video import IMAGE_EXTENSIONS
from ..sequence import (
    Sequence,
    check_root,
    image_files,
    natural_sorted,
    pad_first_box,
    read_boxes,
    read_optional_flags,
    valid_boxes,
)
from .base import IndexedDataset

GROUNDTRUTH = "groundtruth.txt"


class FolderDataset(IndexedDataset):
    """Reader for custom sequences: ``FolderDataset(root)`` (one sequence or a folder of them)."""

    name = "folder"

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = check_root(root, "folder dataset")
        self._folders: list[Path] = []
        self._build_index()

    def _list_names(self) -> list[str]:
        if (self.root / GROUNDTRUTH).is_file():
            self._folders = [self.root]
        else:
            with os.scandir(self.root) as entries:
                subdirs = [Path(e.path) for e in entries if e.is_dir()]
            self._folders = natural_sorted([d for d in subdirs if (d / GROUNDTRUTH).is_file()])
            if not self._folders:
                if image_files(self.root):
                    raise InputError(f"{self.root}: folder has images but no {GROUNDTRUTH}")
                what = "empty folder" if not any(self.root.iterdir()) else "no sequence found"
                raise InputError(
                    f"{self.root}: {what}: expected images with a {GROUNDTRUTH}, or sub-folders that each "
                    f"hold images and a {GROUNDTRUTH}"
                )
        return [f.name for f in self._folders]

    def _load(self, index: int) -> Sequence:
        folder = self._folders[index]
        frames = image_files(folder)
        if not frames and (folder / "img").is_dir():
            frames = image_files(folder / "img")
        if not frames:
            raise InputError(
                f"{folder}: no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in the folder or its img/ sub-folder"
            )
        n = len(frames)
        gt_path = folder / GROUNDTRUTH
        boxes = pad_first_box(read_boxes(gt_path), n)
        if len(boxes) != n:
            raise InputError(
                f"{gt_path}: {len(boxes)} lines but {n} images in {frames[0].parent} "
                f"(give one box per image, or a single line for the first frame)"
            )
        visible = valid_boxes(boxes)
        absent = read_optional_flags(folder / "absence.label", n)
        if absent is not None:
            visible &= absent == 0
        shown = read_optional_flags(folder / "visible.txt", n)
        if shown is not None:
            visible &= shown != 0
        return self._sequence(folder.name, frames, boxes, visible)
