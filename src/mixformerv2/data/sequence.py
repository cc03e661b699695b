"""The one sequence abstraction shared by training and evaluation.

A *reader* turns a dataset's on-disk layout into :class:`Sequence` objects; samplers,
evaluation runners and metrics only ever see sequences.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Protocol, Sequence as Seq, runtime_checkable

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
        return valid_boxes(self.boxes)

    def read_frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as RGB uint8 (H, W, 3); InputError naming the file if unreadable."""
        from ..tracking.video import read_image

        return read_image(self.frames[index])

    def frames_rgb(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.read_frame(i)


@runtime_checkable
class SequenceDataset(Protocol):
    """What every reader provides: a name, the sequence names, a length and indexed sequences
    (loaded lazily)."""

    name: str

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Sequence: ...

    @property
    def sequence_names(self) -> list[str]: ...

    @property
    def is_video(self) -> bool: ...


def valid_boxes(boxes: np.ndarray) -> np.ndarray:
    """(N,) bool: the x,y,w,h box of each row is known (finite) and has positive width and height."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.isfinite(b).all(axis=1) & (b[:, 2] > 0) & (b[:, 3] > 0)


def pad_first_box(boxes: np.ndarray, n: int) -> np.ndarray:
    """A lone first-frame box (GOT-10k / TrackingNet test style) padded with NaN rows to ``n``
    frames; any other array is returned unchanged (callers check its length)."""
    if len(boxes) == 1 and n > 1:
        return np.vstack([boxes, np.full((n - 1, 4), np.nan)])
    return boxes


def format_names(names: Iterable[str], limit: int = 10) -> str:
    """``a, b, c ... (N in all)``: names for an error message, at most ``limit`` of them."""
    names = [str(n) for n in names]
    return ", ".join(names[:limit]) + (f" ... ({len(names)} in all)" if len(names) > limit else "")


def numbered_lines(path: str | os.PathLike) -> list[tuple[int, str]]:
    """(1-based line number, stripped text) of each non-empty line; InputError naming a missing
    or unreadable file."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


def read_lines(path: str | os.PathLike) -> list[str]:
    """Non-empty stripped lines of a text file; InputError naming a missing file."""
    return [line for _, line in numbered_lines(path)]


def read_boxes(path: str | os.PathLike, allow_nan: bool = True) -> np.ndarray:
    """An x,y,w,h annotation file (comma, tab or space separated) -> (N, 4) float64.

    A malformed line raises InputError naming the file and the 1-based line number.
    """
    rows = []
    for number, line in numbered_lines(path):
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
    """0/1 (or integer) flags separated by commas, spaces or newlines -> int array.

    A value that is not an integer (``x``, ``0.5``, ``nan``; ``1.0`` is accepted) raises InputError
    naming the file and the 1-based line number.
    """
    values = []
    for number, line in numbered_lines(path):
        for part in line.replace(",", " ").split():
            try:
                value = float(part)
            except ValueError:
                value = math.nan
            if not value.is_integer():
                raise InputError(f"{path}:{number}: expected integer flags, got {part!r} in {line!r}")
            values.append(int(value))
    flags = np.asarray(values, dtype=np.int64)
    if length is not None and len(flags) != length:
        raise InputError(f"{path}: {len(flags)} values for {length} frames")
    return flags


def read_optional_flags(path: str | os.PathLike, length: int) -> np.ndarray | None:
    """:func:`read_flags` of ``path`` when the file exists, else None."""
    return read_flags(path, length=length) if Path(path).is_file() else None


def check_root(root: str | os.PathLike, what: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{what} root not found: {root}")
    return root


def natural_sorted(paths: Seq[Path]) -> list[Path]:
    from ..tracking.video import natural_key

    return sorted(paths, key=lambda p: natural_key(p.name))


def image_files(folder: str | os.PathLike, extensions: Iterable[str] | None = None) -> list[Path]:
    """Natural-sorted image files of ``folder`` (suffixes in ``extensions``, lower case with the dot;
    default: every image type); [] when there is none, InputError when the folder can't be listed."""
    from ..tracking.video import IMAGE_EXTENSIONS

    folder = Path(folder)
    wanted = IMAGE_EXTENSIONS if extensions is None else frozenset(extensions)
    try:
        files = [p for p in folder.iterdir() if p.suffix.lower() in wanted and p.is_file()]
    except OSError as exc:
        raise InputError(f"cannot list {folder}: {exc}") from None
    return natural_sorted(files)


def list_frames(folder: str | os.PathLike, extensions: Iterable[str] | None = None) -> list[Path]:
    """:func:`image_files`, but a folder with no such image is an InputError naming it."""
    frames = image_files(folder, extensions)
    if not frames:
        kinds = "images" if extensions is None else " or ".join(sorted(extensions)) + " frames"
        raise InputError(f"{folder}: folder holds no {kinds}")
    return frames


def numbered_frames(folder: str | os.PathLike, first: int, last: int, digits: int, ext: str = "jpg") -> list[Path]:
    """``folder/<first>.<ext> ... folder/<last>.<ext>`` with zero-padded numbers (inclusive range)."""
    folder = Path(folder)
    return [folder / f"{i:0{digits}d}.{ext}" for i in range(first, last + 1)]
