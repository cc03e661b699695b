"""COCO detection annotations as one-frame "sequences" (for image-pair training).

Layout::

    <root>/annotations/instances_<split><version>.json
    <root>/<split><version>/<file_name>

Every annotation with ``iscrowd == 0`` is one :class:`Sequence` with a single frame
(``is_image=True``), its ``bbox`` (x, y, w, h), ``object_class`` = the category name and
name ``f"{image_id}_{ann_id}"``. The json is parsed once; annotations are kept in compact
arrays (COCO train holds ~860k objects).
"""

from __future__ import annotations

import json
import os
from typing import Iterator

import numpy as np

from ...errors import InputError
from ..sequence import Sequence, check_root

LAYOUT = "<root>/annotations/instances_<split><version>.json and <root>/<split><version>/"


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


class COCO:
    """COCO reader: ``COCO(root, split='train', version='2017')``."""

    name = "coco"

    def __init__(self, root: str | os.PathLike, split: str = "train", version: str | int = "2017") -> None:
        self.root = check_root(root, "COCO")
        self.split, self.version = str(split), str(version)
        tag = f"{self.split}{self.version}"
        self.annotation_file = self.root / "annotations" / f"instances_{tag}.json"
        self.image_dir = self.root / tag
        if not self.annotation_file.is_file():
            raise InputError(f"COCO annotation file not found: {self.annotation_file} (expected {LAYOUT})")
        if not self.image_dir.is_dir():
            raise InputError(f"COCO image folder not found: {self.image_dir} (expected {LAYOUT})")
        data = self._load()
        src = self.annotation_file
        try:
            self._files = {int(img["id"]): str(img["file_name"]) for img in data.get("images", [])}
            self._categories = {int(c["id"]): str(c["name"]) for c in data.get("categories", [])}
            anns = [a for a in data.get("annotations", []) if not a.get("iscrowd", 0)]
            image_ids = np.array([int(a["image_id"]) for a in anns], dtype=np.int64)
            ann_ids = np.array([int(a["id"]) for a in anns], dtype=np.int64)
            cat_ids = np.array([int(a["category_id"]) for a in anns], dtype=np.int64)
            boxes = np.array([[float(v) for v in a["bbox"]] for a in anns], dtype=np.float64)
            if boxes.size and boxes.shape != (len(anns), 4):
                raise ValueError(f"bbox must hold 4 values x, y, w, h, got shape {boxes.shape[1:]}")
            boxes = boxes.reshape(-1, 4)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"{src}: malformed COCO annotations ({type(exc).__name__}: {exc})") from None
        if not len(anns):
            raise InputError(f"{src}: no non-crowd annotations")
        unknown_images = sorted(set(image_ids.tolist()) - self._files.keys())
        if unknown_images:
            raise InputError(f"{src}: annotations refer to unknown image id(s) {unknown_images[:10]}")
        unknown_cats = sorted(set(cat_ids.tolist()) - self._categories.keys())
        if unknown_cats:
            raise InputError(f"{src}: annotations refer to unknown category id(s) {unknown_cats[:10]}")
        self._image_ids, self._ann_ids, self._cat_ids, self._boxes = image_ids, ann_ids, cat_ids, boxes
        self._lookup: dict[str, int] | None = None
        self._names: list[str] | None = None

    def _load(self) -> dict:
        try:
            with open(self.annotation_file, "rb") as f:
                data = json.load(f)
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read {self.annotation_file}: {exc}") from None
        except json.JSONDecodeError as exc:
            raise InputError(f"{self.annotation_file}:{exc.lineno}: invalid JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise InputError(f"{self.annotation_file}: not a COCO annotation file (top level is not an object)")
        return data

    @property
    def sequence_names(self) -> list[str]:
        if self._names is None:  # built on first use: COCO train has ~860k objects
            self._names = [f"{i}_{a}" for i, a in zip(self._image_ids.tolist(), self._ann_ids.tolist())]
        return self._names

    @property
    def category_names(self) -> list[str]:
        return [self._categories[k] for k in sorted(self._categories)]

    # -- reader protocol --------------------------------------------------------------------------
    @property
    def is_video(self) -> bool:
        return False

    def __len__(self) -> int:
        return len(self._ann_ids)

    def __iter__(self) -> Iterator[Sequence]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return (
            f"COCO(root={str(self.root)!r}, split={self.split!r}, version={self.version!r}, "
            f"{len(self)} objects in {len(set(self._image_ids.tolist()))} images)"
        )

    def __getitem__(self, index: int | str) -> Sequence:
        if isinstance(index, str):
            if self._lookup is None:
                self._lookup = {n: i for i, n in enumerate(self.sequence_names)}
            if index not in self._lookup:
                raise KeyError(f"no COCO object {index!r} in {self!r}")
            index = self._lookup[index]
        i = _index(index, len(self))
        image_id = int(self._image_ids[i])
        box = self._boxes[i : i + 1].copy()
        valid = bool(np.isfinite(box).all() and box[0, 2] > 0 and box[0, 3] > 0)
        return Sequence(
            name=f"{image_id}_{int(self._ann_ids[i])}",
            frames=[self.image_dir / self._files[image_id]],
            boxes=box,
            visible=[valid],
            dataset=self.name,
            object_class=self._categories[int(self._cat_ids[i])],
            is_image=True,
            extra={"image_id": image_id, "annotation_id": int(self._ann_ids[i])},
        )
