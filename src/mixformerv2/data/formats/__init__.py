"""Dataset readers, one module per on-disk format; each yields :class:`~..sequence.Sequence`.

``open_dataset("got10k", "data/got10k/train", split_file=...)`` picks a reader by name.
"""

from __future__ import annotations

import inspect
import os

from ...errors import InputError
from .coco import COCO
from .folder import FolderDataset
from .got10k import GOT10k
from .lasot import LaSOT
from .trackingnet import TrackingNet

DATASETS = {
    "lasot": LaSOT,
    "got10k": GOT10k,
    "trackingnet": TrackingNet,
    "coco": COCO,
    "folder": FolderDataset,
}


def open_dataset(name: str, root: str | os.PathLike, **kwargs):
    """The reader registered under ``name`` (case-insensitive) opened on ``root``."""
    key = str(name).strip().lower().replace("-", "")
    if key not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    cls = DATASETS[key]
    try:
        inspect.signature(cls).bind(root, **kwargs)
    except TypeError as exc:
        params = [p for p in inspect.signature(cls).parameters if p != "root"]
        raise InputError(f"dataset {key!r}: {exc}; options: {', '.join(params) or 'none'}") from None
    return cls(root, **kwargs)


__all__ = ["COCO", "DATASETS", "FolderDataset", "GOT10k", "LaSOT", "TrackingNet", "open_dataset"]
