"""Saving and loading every model one way, and writing files so that nothing is half-written.

Everything l2i writes (audio, dictionaries, classifiers, interpreters, cached models, downloads)
goes to a temporary file beside its destination and is moved into place only once complete: an
interrupted or failed write leaves the old file, or nothing. Every model (:class:`l2i.NMF`,
:class:`l2i.models.MelCNN`, :class:`l2i.Interpreter`, :class:`l2i.lmac.LMAC`) is saved by
:func:`save_model` as one payload, ``{format, format_version, l2i_version, config, state,
history}``, and read back by :func:`load_model`, which checks each of these before anything is
built from it, with ``weights_only=True`` (no code in a file is ever run).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

__all__ = ["CheckpointError", "atomic_path", "load_model", "save_model", "save_torch"]


class CheckpointError(ValueError):
    """A file that is not the l2i model it should be: unreadable, truncated, another format, or a
    newer one. (A missing file raises :class:`FileNotFoundError`.)"""


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


def save_model(path: str | os.PathLike, kind: str, version: int, config: dict, state: dict,
               history: dict | None = None) -> Path:
    """Save a model of ``kind`` (e.g. ``"l2i.interpreter"``) in format ``version``, atomically:
    its ``config`` (what builds it), its ``state`` (tensors, moved to the CPU) and its training
    ``history``."""
    from . import __version__

    payload = {
        "format": kind, "format_version": int(version), "l2i_version": __version__, "config": config,
        "state": {k: v.detach().cpu() if isinstance(v, torch.Tensor) else v for k, v in state.items()},
        "history": history or {},
    }
    return save_torch(payload, path)


def load_model(path: str | os.PathLike, kind: str, version: int, what: str, map_location="cpu") -> dict:
    """The payload :func:`save_model` wrote at ``path``, checked: the file exists
    (:class:`FileNotFoundError`), is readable, is a ``kind`` file and not of a newer format than
    ``version`` (:class:`CheckpointError`, naming ``what`` it should be and the fix)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} file at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path} is not a readable l2i {what} ({type(err).__name__}: {err}); "
                              "it may be truncated or damaged: save it again") from err
    if not isinstance(payload, dict) or payload.get("format") != kind:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path} is not an l2i {what} file (it holds {found!r})")
    if int(payload.get("format_version", 0)) > version:
        raise CheckpointError(f"{path} was written by a newer l2i ({payload.get('l2i_version')}, format "
                              f"{payload.get('format_version')}): upgrade l2i to read it")
    if "state" not in payload and "state_dict" in payload:  # files of the first formats
        payload["state"] = payload.pop("state_dict")
    return payload
