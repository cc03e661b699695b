"""LaSOT (and LaSOT_ext, which shares the layout).

Layout::

    <root>/<class>/<class>-<n>/img/00000001.jpg ...    (1-based, 8 digits)
    <root>/<class>/<class>-<n>/groundtruth.txt         x,y,w,h per line (comma)
    <root>/<class>/<class>-<n>/full_occlusion.txt      one comma-separated line of 0/1
    <root>/<class>/<class>-<n>/out_of_view.txt         one comma-separated line of 0/1

visible = not fully occluded and not out of view and a valid box (w > 0, h > 0).

``split='test'`` reads ``testing_set.txt`` when the download has it, else the official 280-sequence
test list of protocol II (4 sequences of each of the 70 classes), :data:`LASOT_TEST`.

Indexing only lists the class folders (no annotation file and no image folder is read), so a
full 1400-sequence dataset opens in milliseconds; each sequence's files are read in
``__getitem__``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ...errors import InputError
from ...tracking.video import natural_key
from ..sequence import Sequence, check_root, format_names, read_boxes, read_lines, read_optional_flags, valid_boxes
from .base import IndexedDataset

LAYOUT = "<root>/<class>/<class>-<n>/{groundtruth.txt, img/%08d.jpg}"
OFFICIAL_SPLITS = {"train": "training_set.txt", "test": "testing_set.txt"}

# The LaSOT protocol-II test set, in the order of the official testing_set.txt: class -> the numbers
# of its 4 test sequences. Source: the sequence list of pytracking's LaSOT test dataset
# (pytracking/evaluation/lasotdataset.py, "LaSOT test set consisting of 280 videos"), cross-checked
# against an independent copy of the list; 70 classes x 4 = 280 names.
_LASOT_TEST_BY_CLASS = (
    ("airplane", (1, 9, 13, 15)), ("basketball", (1, 6, 7, 11)), ("bear", (2, 4, 6, 17)),
    ("bicycle", (2, 7, 9, 18)), ("bird", (2, 3, 15, 17)), ("boat", (3, 4, 12, 17)),
    ("book", (3, 10, 11, 19)), ("bottle", (1, 12, 14, 18)), ("bus", (2, 5, 17, 19)),
    ("car", (2, 6, 9, 17)), ("cat", (1, 3, 18, 20)), ("cattle", (2, 7, 12, 13)),
    ("spider", (14, 16, 18, 20)), ("coin", (3, 6, 7, 18)), ("crab", (3, 6, 12, 18)),
    ("surfboard", (12, 4, 5, 8)), ("cup", (1, 4, 7, 17)), ("deer", (4, 8, 10, 14)),
    ("dog", (1, 7, 15, 19)), ("guitar", (3, 8, 10, 16)), ("person", (1, 5, 10, 12)),
    ("pig", (2, 10, 13, 18)), ("rubicCube", (1, 6, 14, 19)), ("swing", (10, 14, 17, 20)),
    ("drone", (13, 15, 2, 7)), ("pool", (12, 15, 3, 7)), ("rabbit", (10, 13, 17, 19)),
    ("racing", (10, 15, 16, 20)), ("robot", (1, 19, 5, 8)), ("sepia", (13, 16, 6, 8)),
    ("sheep", (3, 5, 7, 9)), ("skateboard", (16, 19, 3, 8)), ("tank", (14, 16, 6, 9)),
    ("tiger", (12, 18, 4, 6)), ("train", (1, 11, 20, 7)), ("truck", (16, 3, 6, 7)),
    ("turtle", (16, 5, 8, 9)), ("umbrella", (17, 19, 2, 9)), ("yoyo", (15, 17, 19, 7)),
    ("zebra", (10, 14, 16, 17)), ("elephant", (1, 12, 16, 18)), ("goldfish", (3, 7, 8, 10)),
    ("hat", (1, 2, 5, 18)), ("kite", (4, 6, 10, 15)), ("motorcycle", (1, 3, 9, 18)),
    ("mouse", (1, 8, 9, 17)), ("flag", (3, 9, 5, 2)), ("frog", (3, 4, 20, 9)),
    ("gametarget", (1, 2, 7, 13)), ("hand", (2, 3, 9, 16)), ("helmet", (5, 11, 19, 13)),
    ("licenseplate", (6, 12, 13, 15)), ("electricfan", (1, 10, 18, 20)), ("chameleon", (3, 6, 11, 20)),
    ("crocodile", (3, 4, 10, 14)), ("gecko", (1, 5, 16, 19)), ("fox", (2, 3, 5, 20)),
    ("giraffe", (2, 10, 13, 15)), ("gorilla", (4, 6, 9, 13)), ("hippo", (1, 7, 9, 20)),
    ("horse", (1, 4, 12, 15)), ("kangaroo", (2, 5, 11, 14)), ("leopard", (1, 7, 16, 20)),
    ("lion", (1, 5, 12, 20)), ("lizard", (1, 3, 6, 13)), ("microphone", (2, 6, 14, 16)),
    ("monkey", (3, 4, 9, 17)), ("shark", (2, 3, 5, 6)), ("squirrel", (8, 11, 13, 19)),
    ("volleyball", (1, 13, 18, 19)),
)
LASOT_TEST: tuple[str, ...] = tuple(f"{cls}-{k}" for cls, nums in _LASOT_TEST_BY_CLASS for k in nums)


def _class_of(name: str) -> str:
    return name.rsplit("-", 1)[0]


def scan_sequences(root: str | os.PathLike) -> set[str]:
    """Names of the ``<class>/<class>-<n>`` folders under ``root`` (directory entries only, no file reads)."""
    found: set[str] = set()
    with os.scandir(root) as classes:
        for entry in classes:
            if not entry.is_dir():
                continue
            pattern = re.compile(re.escape(entry.name) + r"-\d+")
            with os.scandir(entry.path) as seqs:
                for seq in seqs:
                    if pattern.fullmatch(seq.name) and seq.is_dir():
                        found.add(seq.name)
    return found


class LaSOT(IndexedDataset):
    """LaSOT reader: ``LaSOT(root, split=None, classes=None)``.

    ``split``: None (every sequence found under ``root``), ``'train'`` / ``'test'`` (the
    ``training_set.txt`` / ``testing_set.txt`` files of the official download, in ``root``; without
    ``testing_set.txt``, ``'test'`` is the official 280-sequence list :data:`LASOT_TEST`), or the
    path of a split file with one sequence name per line (e.g. ``airplane-10``; the order of the
    file is kept). ``classes``: optional class names to keep.
    """

    name = "lasot"
    title = "LaSOT"

    def __init__(
        self,
        root: str | os.PathLike,
        split: str | os.PathLike | None = None,
        classes: Iterable[str] | None = None,
    ) -> None:
        self.root = check_root(root, "LaSOT")
        self.split = split
        self.classes = classes
        self._build_index()

    # -- indexing ---------------------------------------------------------------------------------
    def _list_names(self) -> list[str]:
        found = self._scan()
        if not found:
            raise InputError(
                f"{self.root}: no LaSOT sequences found (expected {LAYOUT})" + _layout_hint(self.root)
            )
        if self.split is None:
            names = sorted(found, key=natural_key)
        else:
            names, source = self._split_names(self.split)
            missing = [n for n in names if n not in found]
            if missing:
                raise InputError(
                    f"{source}: {len(missing)} sequence(s) not found under {self.root}: {format_names(missing)}"
                    + ("; to score every sequence found instead, pass split=None (CLI: --split all)"
                       if self.split == "test" else "")
                )
        if self.classes is not None:
            wanted = [self.classes] if isinstance(self.classes, str) else list(self.classes)
            known = {_class_of(n) for n in found}
            bad = [c for c in wanted if c not in known]
            if bad:
                raise InputError(f"{self.root}: unknown LaSOT class(es): {format_names(bad)}")
            keep = set(wanted)
            names = [n for n in names if _class_of(n) in keep]
            if not names:
                raise InputError(f"{self.root}: no sequence of classes {format_names(wanted)} in the split")
        return names

    def _scan(self) -> set[str]:
        return scan_sequences(self.root)

    def _split_names(self, split: str | os.PathLike) -> tuple[list[str], str]:
        """The names of a split (file order, duplicates dropped) and where they come from."""
        if isinstance(split, str) and split in OFFICIAL_SPLITS:
            path = self.root / OFFICIAL_SPLITS[split]
            if not path.is_file():
                if split == "test":
                    return list(LASOT_TEST), f"the official LaSOT test list ({len(LASOT_TEST)} sequences)"
                raise InputError(
                    f"LaSOT split {split!r} needs {path} (part of the official download), which is missing; "
                    f"pass the path of a split file instead (one sequence name per line, e.g. lasot_train_split.txt)"
                )
        else:
            path = Path(split)
            if not path.is_file():
                raise InputError(
                    f"LaSOT split file not found: {path} (use None, 'train', 'test' or the path of a split file)"
                )
        names = list(dict.fromkeys(read_lines(path)))
        if not names:
            raise InputError(f"{path}: empty split file (no sequence names)")
        return names, str(path)

    # -- reader protocol --------------------------------------------------------------------------
    def _repr_options(self) -> dict[str, Any]:
        return {"split": None if self.split is None else str(self.split)}

    def _load(self, index: int) -> Sequence:
        name = self.sequence_names[index]
        cls = _class_of(name)
        folder = self.root / cls / name
        boxes = read_boxes(folder / "groundtruth.txt")
        n = len(boxes)
        occlusion = _flags_or_zeros(folder / "full_occlusion.txt", n)
        out_of_view = _flags_or_zeros(folder / "out_of_view.txt", n)
        visible = (occlusion == 0) & (out_of_view == 0) & valid_boxes(boxes)
        img = folder / "img"
        frames = [img / f"{i:08d}.jpg" for i in range(1, n + 1)]
        extra = {"full_occlusion": occlusion.astype(bool), "out_of_view": out_of_view.astype(bool)}
        return self._sequence(name, frames, boxes, visible, object_class=cls, extra=extra)


def _flags_or_zeros(path: Path, n: int) -> np.ndarray:
    flags = read_optional_flags(path, n)
    return np.zeros(n, dtype=np.int64) if flags is None else flags


def _layout_hint(root: Path) -> str:
    if (root / "list.txt").is_file():
        return "; this looks like a GOT-10k split folder (it has list.txt)"
    if any((root / f"TRAIN_{k}").is_dir() for k in range(12)) or (root / "TEST").is_dir():
        return "; this looks like a TrackingNet root"
    if (root / "annotations").is_dir():
        return "; this looks like a COCO root"
    return ""
