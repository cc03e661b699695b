"""TNL2K (tracking by natural language): test (or train) folder.

Layout::

    <root>/<sequence>/imgs/00001.jpg ...      frames (.jpg or .png, natural-sorted)
    <root>/<sequence>/groundtruth.txt         x,y,w,h per frame (comma)
    <root>/<sequence>/language.txt            the sentence describing the target

The sentence is kept in ``Sequence.extra['language']`` (None without ``language.txt``).
visible = a valid box (w > 0, h > 0).
"""

from __future__ import annotations

from ...errors import InputError
from ..sequence import Sequence, list_frames, read_boxes, read_lines, valid_boxes
from .base import FolderListDataset

LAYOUT = "<root>/<sequence>/{groundtruth.txt, language.txt, imgs/*.jpg}"


class TNL2K(FolderListDataset):
    """TNL2K reader: ``TNL2K(root)``; the sequences are the natural-sorted sub-folders of ``root``
    that hold a ``groundtruth.txt``."""

    name = "tnl2k"
    title = "TNL2K"
    listing = None
    layout = LAYOUT

    def _load(self, index: int) -> Sequence:
        name = self.sequence_names[index]
        folder = self.root / name
        frames = list_frames(folder / "imgs", {".jpg", ".png"})
        gt_path = folder / "groundtruth.txt"
        boxes = read_boxes(gt_path)
        if len(boxes) != len(frames):
            raise InputError(f"{gt_path}: {len(boxes)} boxes for {len(frames)} frames in {folder / 'imgs'}")
        language_path = folder / "language.txt"
        language = " ".join(read_lines(language_path)) if language_path.is_file() else None
        return self._sequence(name, frames, boxes, valid_boxes(boxes), extra={"language": language})
