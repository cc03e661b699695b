"""GOT-10k (train / val / test split folders).

Layout of a split folder (``root``)::

    <root>/list.txt                         sequence folder names, one per line
    <root>/GOT-10k_Train_000001/00000001.jpg ...   (1-based, 8 digits)
    <root>/GOT-10k_Train_000001/groundtruth.txt    x,y,w,h per line (comma); test: first line only
    <root>/GOT-10k_Train_000001/absence.label      one int per line (1 = absent); not in test
    <root>/GOT-10k_Train_000001/cover.label        one int per line (0..8 visible ratio); not in test
    <root>/GOT-10k_Train_000001/meta_info.ini      optional ("object_class: fox", ...)

visible = not absent and cover > 0 and a valid box (labels missing: a valid box). Test boxes
after the first frame are NaN, hence not visible.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ...errors import InputError
from ...tracking.video import natural_key
from ..sequence import Sequence, check_root, read_boxes, read_flags, read_lines

LAYOUT = "<root>/list.txt and <root>/<sequence>/{groundtruth.txt, 00000001.jpg, ...}"


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


def _shown(names: Iterable[str], limit: int = 10) -> str:
    names = list(names)
    return ", ".join(names[:limit]) + (f" ... ({len(names)} in all)" if len(names) > limit else "")


def read_meta_info(path: Path) -> dict[str, str]:
    """``key: value`` lines of a GOT-10k ``meta_info.ini`` (section headers skipped)."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    meta: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and not key.strip().startswith(("[", "#", ";")):
            meta[key.strip()] = value.strip()
    return meta


class GOT10k:
    """GOT-10k reader: ``GOT10k(root, split_file=None)`` with ``root`` a split folder.

    ``split_file``: optional path of a file holding, one per line, either 0-based indices into
    ``list.txt`` (the official ``got10k_vot_train_split.txt`` style) or sequence names.
    Without ``list.txt`` the sorted folders holding a ``groundtruth.txt`` are used.
    """

    name = "got10k"

    def __init__(self, root: str | os.PathLike, split_file: str | os.PathLike | None = None) -> None:
        self.root = check_root(root, "GOT-10k")
        self.split_file = None if split_file is None else Path(split_file)
        listing = self.root / "list.txt"
        if listing.is_file():
            names = list(dict.fromkeys(read_lines(listing)))
            if not names:
                raise InputError(f"{listing}: empty sequence list")
            missing = [n for n in names if not (self.root / n).is_dir()]
            if missing:
                raise InputError(f"{listing}: {len(missing)} listed sequence folder(s) missing in {self.root}: {_shown(missing)}")
        else:
            with os.scandir(self.root) as entries:
                names = sorted(
                    (e.name for e in entries if e.is_dir() and os.path.isfile(os.path.join(e.path, "groundtruth.txt"))),
                    key=natural_key,
                )
            if not names:
                raise InputError(f"{self.root}: not a GOT-10k split folder (expected {LAYOUT})" + _hint(self.root))
        if self.split_file is not None:
            names = self._select(names, self.split_file)
        self.sequence_names: list[str] = names
        self._lookup = {n: i for i, n in enumerate(names)}

    def _select(self, names: list[str], split_file: Path) -> list[str]:
        if not split_file.is_file():
            raise InputError(f"GOT-10k split file not found: {split_file}")
        entries = list(dict.fromkeys(read_lines(split_file)))
        if not entries:
            raise InputError(f"{split_file}: empty split file")
        if all(e.isdigit() for e in entries):  # 0-based indices into list.txt
            bad = [e for e in entries if int(e) >= len(names)]
            if bad:
                raise InputError(
                    f"{split_file}: index(es) out of range for {len(names)} sequences in {self.root}: {_shown(bad)}"
                )
            return [names[int(e)] for e in entries]
        known = set(names)
        missing = [e for e in entries if e not in known]
        if missing:
            raise InputError(f"{split_file}: {len(missing)} sequence(s) not in {self.root}: {_shown(missing)}")
        return entries

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
        split = "" if self.split_file is None else f", split_file={str(self.split_file)!r}"
        return f"GOT10k(root={str(self.root)!r}{split}, {len(self)} sequences)"

    def __getitem__(self, index: int | str) -> Sequence:
        if isinstance(index, str):
            if index not in self._lookup:
                raise KeyError(f"no GOT-10k sequence {index!r} in {self!r}")
            index = self._lookup[index]
        name = self.sequence_names[_index(index, len(self))]
        folder = self.root / name
        try:
            files = [f for f in os.listdir(folder) if f.lower().endswith(".jpg")]
        except OSError as exc:
            raise InputError(f"cannot list GOT-10k sequence folder {folder}: {exc}") from None
        if not files:
            raise InputError(f"{folder}: GOT-10k sequence folder holds no .jpg frames")
        files.sort(key=natural_key)
        frames = [folder / f for f in files]
        n = len(frames)

        gt_path = folder / "groundtruth.txt"
        boxes = read_boxes(gt_path)
        if len(boxes) == 1 and n > 1:  # test split: first frame only
            boxes = np.vstack([boxes, np.full((n - 1, 4), np.nan)])
        elif len(boxes) != n:
            raise InputError(f"{gt_path}: {len(boxes)} boxes for {n} frames (.jpg files) in {folder}")
        valid = np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
        visible = valid.copy()
        extra: dict = {}
        absence_path, cover_path = folder / "absence.label", folder / "cover.label"
        if absence_path.is_file():
            absent = read_flags(absence_path, length=n)
            visible &= absent == 0
            extra["absence"] = absent.astype(bool)
        if cover_path.is_file():
            cover = read_flags(cover_path, length=n)
            visible &= cover > 0
            extra["cover"] = cover
        object_class = None
        meta_path = folder / "meta_info.ini"
        if meta_path.is_file():
            meta = read_meta_info(meta_path)
            extra["meta"] = meta
            object_class = meta.get("object_class") or None
        return Sequence(
            name=name,
            frames=frames,
            boxes=boxes,
            visible=visible,
            dataset=self.name,
            object_class=object_class,
            extra=extra,
        )


def _hint(root: Path) -> str:
    splits = [s for s in ("train", "val", "test") if (root / s).is_dir()]
    if splits:
        return f"; {root} holds {', '.join(s + '/' for s in splits)}: pass one of those folders"
    if any(p.is_dir() and (p / "img").is_dir() for p in root.glob("*/*")):
        return "; this looks like a LaSOT root"
    return ""
