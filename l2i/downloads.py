"""Downloads and archives: fetched into the cache, checked, and put in place only when complete.

Book: chapter "Listening to the data" (FSDD) and "ESC-50 on a GPU".

Everything lives under :func:`cache_dir`. A download is written to a temporary name and moved into
place once its checksum matches; an archive is unpacked into a temporary folder beside its
destination, and only the part that is kept is moved into place. Whatever fails leaves nothing
half-written behind, and nothing is ever written into a folder that is read from.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from .persistence import atomic_path

__all__ = ["cache_dir", "download", "extract", "install_from_archive"]


def cache_dir() -> Path:
    """Where downloads and caches go: ``$L2I_CACHE`` or ``~/.cache/l2i``."""
    return Path(os.environ.get("L2I_CACHE", Path.home() / ".cache" / "l2i")).expanduser()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, path: str | os.PathLike, sha256: str | None = None, progress: bool = True) -> Path:
    """Download ``url`` to ``path`` atomically, checking ``sha256`` when given.

    An existing file with the right checksum is reused. A failed or mismatching download leaves
    nothing behind.
    """
    path = Path(path)
    if path.is_file() and (sha256 is None or _sha256(path) == sha256):
        return path
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=60)
            except (urllib.error.URLError, OSError) as err:
                raise RuntimeError(
                    f"could not download {url} ({err}). Check the network, or download the file by "
                    f"hand and put it at {path}"
                ) from err
            with response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=path.name, disable=not progress) as bar:
                    for chunk in iter(lambda: response.read(1 << 20), b""):
                        out.write(chunk)
                        bar.update(len(chunk))
        if sha256 is not None:
            got = _sha256(tmp)
            if got != sha256:
                raise ValueError(
                    f"checksum mismatch for {url}: expected sha256 {sha256}, got {got}. The download is "
                    "corrupt or the file changed upstream; nothing was kept, try again"
                )
    return path


def _replace_dir(source: Path, dest: Path) -> None:
    """Move the folder ``source`` to ``dest``, replacing whatever ``dest`` held."""
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(source, dest)


def _unpack(archive: Path, into: Path) -> None:
    """Unpack a zip or tar archive into the folder ``into``; a damaged one raises ``ValueError``."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                bad = zf.testzip()
                if bad is not None:
                    raise ValueError(f"{archive} is damaged (bad member {bad}): delete it and download again")
                zf.extractall(into)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(into, filter="data")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
        raise ValueError(f"{archive} is not a readable archive ({err}): delete it and download again") from err


def extract(archive: Path, dest: Path) -> Path:
    """Unpack a zip or tar archive into ``dest`` atomically (into a temporary folder, then moved).

    A damaged or unreadable archive raises ``ValueError`` and leaves ``dest`` as it was.
    """
    return install_from_archive(archive, dest, lambda staging: staging, what="anything")


def install_from_archive(
    archive: Path,
    target: Path,
    find: Callable[[Path], Path | None],
    what: str,
    check: Callable[[Path], object] | None = None,
) -> Path:
    """Unpack ``archive`` and put the one folder of it that is wanted at ``target``.

    The archive is unpacked into a temporary folder beside ``target``; ``find(staging)`` returns
    the folder to keep (``None`` if the archive has none: a ``ValueError`` that names ``what``),
    and ``check(folder)``, when given, raises if it is incomplete. Only then is the folder moved to
    ``target``, replacing what was there; the temporary folder is removed whatever happens, so a
    failure leaves ``target`` as it was.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".extract-"))
    try:
        _unpack(archive, staging)
        keep = find(staging)
        if keep is None:
            raise ValueError(f"{archive} does not hold {what}: delete it and download again")
        if check is not None:
            check(keep)
        _replace_dir(keep, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target
