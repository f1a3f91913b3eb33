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

import errno
import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

__all__ = ["CheckpointError", "atomic_path", "load_model", "read_format", "save_model", "save_torch"]


class CheckpointError(ValueError):
    """A file that is not the l2i model it should be: unreadable, truncated, another format, or a
    newer one. (A missing file raises :class:`FileNotFoundError`.)"""


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); move it to ``path`` if the block succeeds.

    The temporary file is named after this process (``.<stem>.<pid>.<random>.part<suffix>``): one
    left by a process that was killed mid-write is removed by the next write beside it, never read
    as the file. Two processes writing the same path both write whole files, and the last one to
    finish wins. A folder that cannot be written, or a disk that fills, raises an :class:`OSError`
    that names the path and the fix, with nothing left behind.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_parts(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.{os.getpid()}.", suffix=f".part{path.suffix}")
    except OSError as err:
        if err.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        raise PermissionError(
            err.errno, f"cannot write {path}: {path.parent} is not writable ({err.strerror}). Point L2I_CACHE (or the "
            "path given) at a folder you can write to"
        ) from err
    os.close(fd)
    # mkstemp makes the file private (0600); give it the mode a plain open() would, so the cache and
    # the reports stay readable by the others a shared machine lets read them.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        try:
            yield Path(tmp)
        except OSError as err:
            if err.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
                raise OSError(err.errno, f"could not write {path}: {err.strerror} (the disk or a file size limit is "
                                         "full): free space, or point L2I_CACHE elsewhere; nothing was written") from err
            raise
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _remove_stale_parts(path: Path) -> None:
    """Remove the temporary files of ``path`` left by processes that no longer run."""
    for part in path.parent.glob(f".{path.stem}.*.part{path.suffix}"):
        pid = part.name[len(path.stem) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            part.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def save_torch(payload, path: str | os.PathLike) -> Path:
    """``torch.save(payload, path)``, atomically. Serialised in memory first, so that a disk that
    fills raises the operating system's error (and :func:`atomic_path`'s message), not one from
    inside torch's zip writer."""
    from . import distributed

    # Under torch.distributed rank 0 writes and the others skip: no collective here, so the
    # usual ``if rank == 0: save(...)`` of user code cannot hang the run.
    if distributed.is_main():
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(buffer.getbuffer())
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


def read_format(path: str | os.PathLike) -> str:
    """Which l2i model a file holds (``"l2i.interpreter"``, ``"l2i.lmac"``, ``"l2i.nmf"``, ...)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no l2i model file at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path} is not a readable l2i model ({type(err).__name__}: {err}); "
                              "it may be truncated or damaged: save it again") from err
    if not isinstance(payload, dict) or not isinstance(payload.get("format"), str):
        raise CheckpointError(f"{path} is not an l2i model file (it holds {type(payload).__name__})")
    return payload["format"]


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
