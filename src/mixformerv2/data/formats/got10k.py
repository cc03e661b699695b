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
from typing import Any

from ...errors import InputError
from ..sequence import (
    Sequence,
    check_root,
    format_names,
    list_frames,
    pad_first_box,
    read_boxes,
    read_lines,
    read_optional_flags,
    valid_boxes,
)
from .base import IndexedDataset, listed_or_scanned

LAYOUT = "<root>/list.txt and <root>/<sequence>/{groundtruth.txt, 00000001.jpg, ...}"


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


class GOT10k(IndexedDataset):
    """GOT-10k reader: ``GOT10k(root, split_file=None)`` with ``root`` a split folder.

    ``split_file``: optional path of a file holding, one per line, either 0-based indices into
    ``list.txt`` (the official ``got10k_vot_train_split.txt`` style) or sequence names.
    Without ``list.txt`` the sorted folders holding a ``groundtruth.txt`` are used.
    Works on the ``train/``, ``val/`` and ``test/`` folders alike (test: first-frame box only).
    """

    name = "got10k"
    title = "GOT-10k"

    def __init__(self, root: str | os.PathLike, split_file: str | os.PathLike | None = None) -> None:
        self.root = check_root(root, "GOT-10k")
        self.split_file = None if split_file is None else Path(split_file)
        self._build_index()

    def _list_names(self) -> list[str]:
        names = listed_or_scanned(self.root, marker="groundtruth.txt")
        if not names:
            raise InputError(f"{self.root}: not a GOT-10k split folder (expected {LAYOUT})" + _hint(self.root))
        if self.split_file is not None:
            names = self._select(names, self.split_file)
        return names

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
                    f"{split_file}: index(es) out of range for {len(names)} sequences in {self.root}: {format_names(bad)}"
                )
            return [names[int(e)] for e in entries]
        known = set(names)
        missing = [e for e in entries if e not in known]
        if missing:
            raise InputError(f"{split_file}: {len(missing)} sequence(s) not in {self.root}: {format_names(missing)}")
        return entries

    # -- reader protocol --------------------------------------------------------------------------
    def _repr_options(self) -> dict[str, Any]:
        return {"split_file": None if self.split_file is None else str(self.split_file)}

    def _load(self, index: int) -> Sequence:
        name = self.sequence_names[index]
        folder = self.root / name
        frames = list_frames(folder, {".jpg"})
        n = len(frames)
        gt_path = folder / "groundtruth.txt"
        boxes = pad_first_box(read_boxes(gt_path), n)  # test split: first frame only
        if len(boxes) != n:
            raise InputError(f"{gt_path}: {len(boxes)} boxes for {n} frames (.jpg files) in {folder}")
        visible = valid_boxes(boxes)
        extra: dict = {}
        absent = read_optional_flags(folder / "absence.label", n)
        if absent is not None:
            visible &= absent == 0
            extra["absence"] = absent.astype(bool)
        cover = read_optional_flags(folder / "cover.label", n)
        if cover is not None:
            visible &= cover > 0
            extra["cover"] = cover
        object_class = None
        meta_path = folder / "meta_info.ini"
        if meta_path.is_file():
            meta = read_meta_info(meta_path)
            extra["meta"] = meta
            object_class = meta.get("object_class") or None
        return self._sequence(name, frames, boxes, visible, object_class=object_class, extra=extra)


def _hint(root: Path) -> str:
    splits = [s for s in ("train", "val", "test") if (root / s).is_dir()]
    if splits:
        return f"; {root} holds {', '.join(s + '/' for s in splits)}: pass one of those folders"
    if any(p.is_dir() and (p / "img").is_dir() for p in root.glob("*/*")):
        return "; this looks like a LaSOT root"
    return ""
