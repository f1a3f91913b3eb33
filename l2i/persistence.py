"""Writing files so that nothing is ever half-written.

Everything l2i writes (audio, dictionaries, interpreters, cached models, downloads) goes to a
temporary file beside its destination and is moved into place only once complete: an interrupted
or failed write leaves the old file, or nothing.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

__all__ = ["atomic_path", "save_torch"]


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); move it to ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=f".part{path.suffix}")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_torch(payload, path: str | os.PathLike) -> Path:
    """``torch.save(payload, path)``, atomically."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)
