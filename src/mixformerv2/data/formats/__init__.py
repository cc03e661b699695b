"""Dataset readers, one module per on-disk format; each yields :class:`~..sequence.Sequence`.

``open_dataset("got10k", "data/got10k/train", split_file=...)`` picks a reader by name. Training
sets: LaSOT, GOT-10k, TrackingNet, COCO, custom folders; benchmarks: LaSOT (``split='test'``),
GOT-10k val/test folders, TrackingNet ``chunks='TEST'``, OTB100, UAV123, NfS, TNL2K, VOT.
Every reader subclasses :class:`~.base.IndexedDataset`.
"""

from __future__ import annotations

import inspect
import os

from ...errors import InputError
from .base import IndexedDataset
from .coco import COCO
from .folder import FolderDataset
from .got10k import GOT10k
from .lasot import LaSOT
from .nfs import NfS
from .otb import OTB
from .tnl2k import TNL2K
from .trackingnet import TrackingNet
from .uav import UAV123
from .vot import VOT

DATASETS = {
    "lasot": LaSOT,
    "got10k": GOT10k,
    "trackingnet": TrackingNet,
    "coco": COCO,
    "folder": FolderDataset,
    "otb": OTB,
    "uav123": UAV123,
    "nfs": NfS,
    "tnl2k": TNL2K,
    "vot": VOT,
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


__all__ = [
    "COCO",
    "DATASETS",
    "FolderDataset",
    "GOT10k",
    "IndexedDataset",
    "LaSOT",
    "NfS",
    "OTB",
    "TNL2K",
    "TrackingNet",
    "UAV123",
    "VOT",
    "open_dataset",
]
