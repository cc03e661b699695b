"""LaSOT (and LaSOT_ext, which shares the layout).

Layout::

    <root>/<class>/<class>-<n>/img/00000001.jpg ...    (1-based, 8 digits)
    <root>/<class>/<class>-<n>/groundtruth.txt         x,y,w,h per line (comma)
    <root>/<class>/<class>-<n>/full_occlusion.txt      one comma-separated line of 0/1
    <root>/<class>/<class>-<n>/out_of_view.txt         one comma-separated line of 0/1

visible = not fully occluded and not out of view and a valid box (w > 0, h > 0).

Indexing only lists the class folders (no annotation file and no image folder is read), so a
full 1400-sequence dataset opens in milliseconds; each sequence's files are read in
``__getitem__``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ...errors import InputError
from ...tracking.video import natural_key
from ..sequence import Sequence, check_root, read_boxes, read_flags, read_lines

LAYOUT = "<root>/<class>/<class>-<n>/{groundtruth.txt, img/%08d.jpg}"
OFFICIAL_SPLITS = {"train": "training_set.txt", "test": "testing_set.txt"}


def _class_of(name: str) -> str:
    return name.rsplit("-", 1)[0]


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


def _unknown(names: Iterable[str], limit: int = 10) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f" ... ({len(names)} in all)" if len(names) > limit else "")


class LaSOT:
    """LaSOT reader: ``LaSOT(root, split=None, classes=None)``.

    ``split``: None (every sequence found under ``root``), ``'train'`` / ``'test'`` (the
    ``training_set.txt`` / ``testing_set.txt`` files of the official download, in ``root``), or
    the path of a split file with one sequence name per line (e.g. ``airplane-10``; the order
    of the file is kept). ``classes``: optional class names to keep.
    """

    name = "lasot"

    def __init__(
        self,
        root: str | os.PathLike,
        split: str | os.PathLike | None = None,
        classes: Iterable[str] | None = None,
    ) -> None:
        self.root = check_root(root, "LaSOT")
        self.split = split
        found = self._scan()
        if not found:
            raise InputError(
                f"{self.root}: no LaSOT sequences found (expected {LAYOUT})" + _layout_hint(self.root)
            )
        if split is None:
            names = sorted(found, key=natural_key)
        else:
            split_path = self._split_path(split)
            names = list(dict.fromkeys(read_lines(split_path)))  # file order, duplicates dropped
            if not names:
                raise InputError(f"{split_path}: empty split file (no sequence names)")
            missing = [n for n in names if n not in found]
            if missing:
                raise InputError(
                    f"{split_path}: {len(missing)} sequence(s) not found under {self.root}: {_unknown(missing)}"
                )
        if classes is not None:
            wanted = [classes] if isinstance(classes, str) else list(classes)
            known = {_class_of(n) for n in found}
            bad = [c for c in wanted if c not in known]
            if bad:
                raise InputError(f"{self.root}: unknown LaSOT class(es): {_unknown(bad)}")
            keep = set(wanted)
            names = [n for n in names if _class_of(n) in keep]
            if not names:
                raise InputError(f"{self.root}: no sequence of classes {_unknown(wanted)} in the split")
        self.sequence_names: list[str] = names
        self._lookup = {n: i for i, n in enumerate(names)}

    # -- indexing ---------------------------------------------------------------------------------
    def _scan(self) -> set[str]:
        """Names of the ``<class>/<class>-<n>`` folders (directory entries only, no file reads)."""
        found: set[str] = set()
        with os.scandir(self.root) as classes:
            for entry in classes:
                if not entry.is_dir():
                    continue
                pattern = re.compile(re.escape(entry.name) + r"-\d+")
                with os.scandir(entry.path) as seqs:
                    for seq in seqs:
                        if pattern.fullmatch(seq.name) and seq.is_dir():
                            found.add(seq.name)
        return found

    def _split_path(self, split: str | os.PathLike) -> Path:
        if isinstance(split, str) and split in OFFICIAL_SPLITS:
            path = self.root / OFFICIAL_SPLITS[split]
            if not path.is_file():
                raise InputError(
                    f"LaSOT split {split!r} needs {path} (part of the official download), which is missing; "
                    f"pass the path of a split file instead (one sequence name per line, e.g. lasot_train_split.txt)"
                )
            return path
        path = Path(split)
        if not path.is_file():
            raise InputError(
                f"LaSOT split file not found: {path} (use None, 'train', 'test' or the path of a split file)"
            )
        return path

    # -- reader protocol --------------------------------------------------------------------------
    @property
    def is_video(self) -> bool:
        return True

    def __len__(self) -> int:
        return len(self.sequence_names)

    def __iter__(self) -> Iterator[Sequence]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        split = "" if self.split is None else f", split={str(self.split)!r}"
        return f"LaSOT(root={str(self.root)!r}{split}, {len(self)} sequences)"

    def __getitem__(self, index: int | str) -> Sequence:
        if isinstance(index, str):
            if index not in self._lookup:
                raise KeyError(f"no LaSOT sequence {index!r} in {self!r}")
            index = self._lookup[index]
        name = self.sequence_names[_index(index, len(self))]
        cls = _class_of(name)
        folder = self.root / cls / name
        boxes = read_boxes(folder / "groundtruth.txt")
        n = len(boxes)
        occlusion = _optional_flags(folder / "full_occlusion.txt", n)
        out_of_view = _optional_flags(folder / "out_of_view.txt", n)
        valid = np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
        visible = (occlusion == 0) & (out_of_view == 0) & valid
        img = folder / "img"
        frames = [img / f"{i:08d}.jpg" for i in range(1, n + 1)]
        return Sequence(
            name=name,
            frames=frames,
            boxes=boxes,
            visible=visible,
            dataset=self.name,
            object_class=cls,
            extra={"full_occlusion": occlusion.astype(bool), "out_of_view": out_of_view.astype(bool)},
        )


def _optional_flags(path: Path, n: int) -> np.ndarray:
    if not path.is_file():
        return np.zeros(n, dtype=np.int64)
    return read_flags(path, length=n)


def _layout_hint(root: Path) -> str:
    if (root / "list.txt").is_file():
        return "; this looks like a GOT-10k split folder (it has list.txt)"
    if any((root / f"TRAIN_{k}").is_dir() for k in range(12)) or (root / "TEST").is_dir():
        return "; this looks like a TrackingNet root"
    if (root / "annotations").is_dir():
        return "; this looks like a COCO root"
    return ""
