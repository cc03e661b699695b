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
from typing import Any

import numpy as np

from ...errors import InputError
from ..sequence import Sequence, check_root, valid_boxes
from .base import IndexedDataset

LAYOUT = "<root>/annotations/instances_<split><version>.json and <root>/<split><version>/"


class COCO(IndexedDataset):
    """COCO reader: ``COCO(root, split='train', version='2017')``."""

    name = "coco"
    title = "COCO"
    item = "object"
    is_video = False

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
        data = self._read_json()
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

    def _read_json(self) -> dict:
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

    def _list_names(self) -> list[str]:  # built on first use: COCO train has ~860k objects
        return [f"{i}_{a}" for i, a in zip(self._image_ids.tolist(), self._ann_ids.tolist())]

    @property
    def category_names(self) -> list[str]:
        return [self._categories[k] for k in sorted(self._categories)]

    # -- reader protocol --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._ann_ids)

    def _repr_options(self) -> dict[str, Any]:
        return {"split": self.split, "version": self.version}

    def _repr_size(self) -> str:
        return f"{len(self)} objects in {len(set(self._image_ids.tolist()))} images"

    def _load(self, i: int) -> Sequence:
        image_id = int(self._image_ids[i])
        box = self._boxes[i : i + 1].copy()
        return self._sequence(
            f"{image_id}_{int(self._ann_ids[i])}",
            [self.image_dir / self._files[image_id]],
            box,
            valid_boxes(box),
            object_class=self._categories[int(self._cat_ids[i])],
            is_image=True,
            extra={"image_id": image_id, "annotation_id": int(self._ann_ids[i])},
        )
