"""Atomic file writes, used for every file the project produces (results, boxes, checkpoints,
logs, packs): a temp file in the same folder, fsynced, then renamed over the target, so readers
see the old file or the complete new one and a killed job leaves no half-written file.

Temp files are named ``.<name>.<random>.tmp`` (resumable jobs clean up leftovers by that name).
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Callable, Iterator


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync(path: str | os.PathLike, directory: bool = False) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


@contextmanager
def atomic_target(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path to write; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    mode = 0o666 & ~_umask()  # mkstemp creates 0600; give the file the usual permissions
    os.chmod(tmp, mode)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode)  # again: some writers (safetensors) recreate the file with 0600
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent, directory=True)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[Any]], None], binary: bool = True) -> Path:
    """Call ``write(file)`` on a temp file, then move it over ``path``."""
    with atomic_target(path) as tmp:
        mode = {"mode": "wb"} if binary else {"mode": "w", "encoding": "utf-8", "newline": ""}
        with open(tmp, **mode) as f:
            write(f)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text), binary=False)
