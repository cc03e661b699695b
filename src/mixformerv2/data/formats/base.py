"""What every reader shares: name lookup, index normalisation, iteration and ``repr``.

A reader subclasses :class:`IndexedDataset` and implements two things: ``_list_names()`` (the
sequence names, in order; called once) and ``_load(i)`` (the :class:`Sequence` at position ``i``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Iterator

from ...errors import InputError
from ...tracking.video import natural_key
from ..sequence import Sequence, check_root, format_names, numbered_frames, read_boxes, read_lines, valid_boxes


class IndexedDataset:
    """Base of the readers: indexed by position (negative counts from the end) or by name.

    Class attributes: ``name`` (registry key, also ``Sequence.dataset``), ``title`` (the name used in
    messages, e.g. ``'GOT-10k'``), ``item`` (what one entry is: ``'sequence'``; COCO: ``'object'``),
    ``is_video``. Readers that index eagerly call :meth:`_build_index` at the end of ``__init__``
    so that bad input fails when the dataset is opened.
    """

    name: str = ""
    title: str = ""
    item: str = "sequence"
    is_video: bool = True
    root: Path

    _names: list[str] | None = None
    _lookup: dict[str, int] | None = None

    # -- what a reader implements -----------------------------------------------------------------
    def _list_names(self) -> list[str]:
        """The sequence names, in dataset order (called once)."""
        raise NotImplementedError

    def _load(self, index: int) -> Sequence:
        """The sequence at position ``index`` (already normalised to ``0 <= index < len(self)``)."""
        raise NotImplementedError

    def _repr_options(self) -> dict[str, Any]:
        """Constructor options shown by ``repr`` (None values are left out)."""
        return {}

    def _repr_size(self) -> str:
        n = len(self)
        return f"{n} {self.item}{'s' if n != 1 else ''}"

    def _sequence(self, name: str, frames: list[Path], boxes: Any, visible: Any, **fields: Any) -> Sequence:
        """A :class:`Sequence` of this dataset (``fields``: object_class, is_image, extra)."""
        return Sequence(name=name, frames=frames, boxes=boxes, visible=visible, dataset=self.name, **fields)

    # -- shared protocol --------------------------------------------------------------------------
    def _build_index(self) -> None:
        self._names = list(self._list_names())

    @property
    def sequence_names(self) -> list[str]:
        if self._names is None:
            self._build_index()
        return self._names  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self.sequence_names)

    def __iter__(self) -> Iterator[Sequence]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, index: int | str) -> Sequence:
        return self._load(self.position(index))

    def position(self, index: int | str) -> int:
        """``index`` (an int, negative from the end, or a sequence name) as a position in ``range(len(self))``."""
        if isinstance(index, str):
            if self._lookup is None:
                self._lookup = {n: i for i, n in enumerate(self.sequence_names)}
            if index not in self._lookup:
                title = f"{self.title} " if self.title else ""
                raise KeyError(f"no {title}{self.item} {index!r} in {self!r}")
            return self._lookup[index]
        length = len(self)
        try:
            i = int(index)
        except (TypeError, ValueError):
            raise TypeError(f"sequence index must be an int or a sequence name, got {type(index).__name__}") from None
        if i < 0:
            i += length
        if not 0 <= i < length:
            raise IndexError(f"sequence index {index} out of range for {length} sequences")
        return i

    def __repr__(self) -> str:
        options = "".join(f", {k}={v!r}" for k, v in self._repr_options().items() if v is not None)
        return f"{type(self).__name__}(root={str(self.root)!r}{options}, {self._repr_size()})"


@dataclass(frozen=True)
class FrameRange:
    """One benchmark sequence given by a table of facts: frames ``first..last`` (inclusive) named
    ``<folder>/<number, zero-padded to digits>.<ext>`` and boxes in ``anno`` (both paths relative to
    the dataset root), the first ``omit`` annotated frames left out (OTB's Tiger1)."""

    folder: str
    first: int
    last: int
    anno: str
    digits: int = 4
    ext: str = "jpg"
    omit: int = 0


def range_table(text: str, entry: Callable[[str, int, int], FrameRange]) -> dict[str, FrameRange]:
    """``{name: entry(name, first, last)}`` of a whitespace-separated table of ``<name> <last>``
    (frames 1..last) and ``<name> <first>-<last>`` pairs, in table order."""
    tokens = text.split()
    table = {}
    for name, span in zip(tokens[::2], tokens[1::2]):
        first, _, last = span.rpartition("-")
        table[name] = entry(name, int(first or 1), int(last))
    return table


class FrameRangeDataset(IndexedDataset):
    """A benchmark whose sequences are a fixed table of :class:`FrameRange` facts (OTB, UAV123).

    ``Reader(root, sequences=None)``: None opens every sequence of the table (all must be present:
    a partial download is an InputError listing what is missing), or a list of sequence names.
    Indexing only checks that the annotation files exist; boxes are read in ``__getitem__``.
    """

    table: ClassVar[dict[str, FrameRange]] = {}
    layout: ClassVar[str] = ""

    def __init_subclass__(cls, table: dict[str, FrameRange] | None = None, layout: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if table is not None:
            cls.table, cls.layout = table, layout

    def __init__(self, root: str | os.PathLike, sequences: Iterable[str] | str | None = None) -> None:
        self.root = check_root(root, self.title)
        self.sequences = sequences
        self._build_index()

    def _list_names(self) -> list[str]:
        names = select_names(self.table, self.sequences, f"{self.title} ({len(self.table)} sequences)")
        missing = [n for n in names if not (self.root / self.table[n].anno).is_file()]
        if len(missing) == len(names):
            raise InputError(f"{self.root}: no {self.title} sequences found (expected {self.layout})")
        if missing:
            raise InputError(
                f"{self.root}: {len(missing)} of {len(names)} {self.title} sequences missing (expected "
                f"{self.layout}; pass sequences=[...] to open a subset): {format_names(missing)}"
            )
        return names

    def _repr_size(self) -> str:
        return super()._repr_size() + ("" if self.sequences is None else f" of {len(self.table)}")

    def _load(self, index: int) -> Sequence:
        name = self.sequence_names[index]
        entry = self.table[name]
        anno = self.root / entry.anno
        boxes = read_boxes(anno)[entry.omit :]
        first = entry.first + entry.omit
        frames = numbered_frames(self.root / entry.folder, first, entry.last, entry.digits, entry.ext)
        if len(boxes) != len(frames):
            raise InputError(
                f"{anno}: {len(boxes) + entry.omit} boxes, but {self.title} sequence {name} has "
                f"{len(frames) + entry.omit} frames ({entry.first}..{entry.last})"
            )
        return self._sequence(name, frames, boxes, valid_boxes(boxes))


class FolderListDataset(IndexedDataset):
    """A reader opened on one folder whose sequences are the sub-folders named in ``listing`` (when
    that file exists) or else those holding a ``marker`` file (see :func:`listed_or_scanned`)."""

    marker: ClassVar[str] = "groundtruth.txt"
    listing: ClassVar[str | None] = "list.txt"
    layout: ClassVar[str] = ""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = check_root(root, self.title)
        self._build_index()

    def _list_names(self) -> list[str]:
        names = listed_or_scanned(self.root, marker=self.marker, listing=self.listing)
        if not names:
            raise InputError(f"{self.root}: no {self.title} sequences found (expected {self.layout})")
        return names


def listed_or_scanned(root: Path, marker: str, listing: str | None = "list.txt") -> list[str]:
    """Sequence folder names of ``root``: the lines of ``root/listing`` when that file exists (file
    order, duplicates dropped; an empty list or a missing folder is an InputError naming the file),
    else the natural-sorted sub-folders holding a ``marker`` file ([] when there is none)."""
    path = None if listing is None else root / listing
    if path is not None and path.is_file():
        names = list(dict.fromkeys(read_lines(path)))
        if not names:
            raise InputError(f"{path}: empty sequence list")
        missing = [n for n in names if not (root / n).is_dir()]
        if missing:
            raise InputError(
                f"{path}: {len(missing)} listed sequence folder(s) missing in {root}: {format_names(missing)}"
            )
        return names
    with os.scandir(root) as entries:
        names = [e.name for e in entries if e.is_dir() and os.path.isfile(os.path.join(e.path, marker))]
    return sorted(names, key=natural_key)


def select_names(known: Iterable[str], wanted: Iterable[str] | str | None, what: str) -> list[str]:
    """``wanted`` (a name, names, or None for all of ``known``) checked against ``known``: unknown
    names raise InputError listing them; the order of ``wanted`` is kept, duplicates dropped."""
    known = list(known)
    if wanted is None:
        return known
    wanted = [wanted] if isinstance(wanted, str) else [str(w) for w in wanted]
    names = list(dict.fromkeys(wanted))
    if not names:
        raise InputError(f"{what}: empty list of sequence names")
    known_set = set(known)
    unknown = [n for n in names if n not in known_set]
    if unknown:
        raise InputError(f"{what}: unknown sequence name(s): {format_names(unknown)}")
    return names
