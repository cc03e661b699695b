"""The one sequence abstraction shared by training and evaluation.

A *reader* turns a dataset's on-disk layout into :class:`Sequence` objects; samplers,
evaluation runners and metrics only ever see sequences.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Protocol, Sequence as Seq, runtime_checkable

import numpy as np

from ..errors import InputError


@dataclass
class Sequence:
    """One annotated video (or a single image, for image datasets such as COCO).

    ``boxes`` are (N, 4) float64 x, y, w, h in pixels (NaN where unknown, e.g. GOT-10k test
    frames after the first); ``visible`` says whether the target can be seen in frame i
    (not absent / occluded / out of view, and a valid box).
    """

    name: str
    frames: list[Path]
    boxes: np.ndarray
    visible: np.ndarray
    dataset: str = ""
    object_class: str | None = None
    is_image: bool = False  # a still image used as a one-frame "video"
    extra: dict = field(default_factory=dict)  # reader-specific per-frame data (e.g. cover levels)

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        self.visible = np.asarray(self.visible, dtype=bool).reshape(-1)
        if not (len(self.frames) == len(self.visible) and len(self.boxes) in (1, len(self.frames))):
            raise InputError(
                f"sequence {self.name!r}: {len(self.frames)} frames, {len(self.boxes)} boxes, "
                f"{len(self.visible)} visibility flags"
            )

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def valid(self) -> np.ndarray:
        """Frames whose box is known and has positive size."""
        b = self.boxes
        return np.isfinite(b).all(axis=1) & (b[:, 2] > 0) & (b[:, 3] > 0)

    def read_frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as RGB uint8 (H, W, 3); InputError naming the file if unreadable."""
        from ..tracking.video import read_image

        return read_image(self.frames[index])

    def frames_rgb(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.read_frame(i)


@runtime_checkable
class SequenceDataset(Protocol):
    """What every reader provides: a name, a length and indexed sequences (loaded lazily)."""

    name: str

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Sequence: ...

    @property
    def is_video(self) -> bool: ...


def read_lines(path: str | os.PathLike) -> list[str]:
    """Non-empty stripped lines of a text file; InputError naming a missing file."""
    path = Path(path)
    try:
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        raise InputError(f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None


def read_boxes(path: str | os.PathLike, allow_nan: bool = True) -> np.ndarray:
    """An x,y,w,h annotation file (comma, tab or space separated) -> (N, 4) float64.

    A malformed line raises InputError naming the file and the 1-based line number.
    """
    rows = []
    for number, line in enumerate(read_lines(path), start=1):
        parts = line.replace(",", " ").replace("\t", " ").split()
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise InputError(f"{path}:{number}: not a number in {line!r}") from None
        if len(values) != 4:
            raise InputError(f"{path}:{number}: expected 4 values x,y,w,h, got {len(values)}: {line!r}")
        if not allow_nan and not np.isfinite(values).all():
            raise InputError(f"{path}:{number}: NaN or infinite value in {line!r}")
        rows.append(values)
    if not rows:
        raise InputError(f"{path}: no boxes")
    return np.asarray(rows, dtype=np.float64)


def read_flags(path: str | os.PathLike, length: int | None = None) -> np.ndarray:
    """0/1 (or integer) flags separated by commas or newlines -> int array."""
    text = ",".join(read_lines(path))
    try:
        values = np.array([int(float(v)) for v in text.split(",") if v.strip()], dtype=np.int64)
    except ValueError:
        raise InputError(f"{path}: expected integers separated by commas or newlines") from None
    if length is not None and len(values) != length:
        raise InputError(f"{path}: {len(values)} values for {length} frames")
    return values


def check_root(root: str | os.PathLike, what: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{what} root not found: {root}")
    return root


def natural_sorted(paths: Seq[Path]) -> list[Path]:
    from ..tracking.video import natural_key

    return sorted(paths, key=lambda p: natural_key(p.name))
