"""Small file helpers shared by the package: atomic writes and file digests.

Everything the course writes that a reader may open while it is being written, or that a crash must
not leave half-written (results JSON, metrics CSV, figures, notebooks, download markers), goes through
:func:`atomic_open`: a temporary file in the same folder, flushed and synced, then renamed over the
target, so the target is always either the old complete file or the new complete file.
"""
from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

__all__ = ["atomic_open", "check_writable", "same_file", "sha256_file"]


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing (``mode`` ``"w"`` or ``"wb"``, ``kwargs`` as
    for :func:`open`), and on a clean exit make it ``path`` (mode 0644) with one ``os.replace``. On an
    error the temporary file is removed and ``path`` is left as it was; an ``OSError`` (a full disk) is raised
    again naming ``path``."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    fd, tmp = _make_temporary(path)
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; these are ordinary files
        os.replace(tmp, path)
    except OSError as e:  # a full disk, a quota, an I/O error: say which file could not be written
        if os.path.exists(tmp):
            os.unlink(tmp)
        if str(path) in str(e):
            raise
        raise type(e)(e.errno, f"cannot write {path}: {e.strerror or e}; it was left as it was") from e
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _make_temporary(path: Path) -> tuple[int, str]:
    """``mkstemp`` beside ``path``; an error names ``path`` (what the caller asked to write), not the
    temporary file's random name."""
    try:
        return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise type(e)(e.errno, f"cannot write {path}: {e.strerror or e} (in folder {path.parent})") from None


def check_writable(path: str | os.PathLike) -> None:
    """Raise ``OSError`` naming ``path`` unless :func:`atomic_open` can write it: its folder exists and
    takes a new file (tried for real, so read-only mounts, permissions and ACLs are all covered; the
    trial file is removed at once). Run it before a long computation whose result goes to ``path``."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"cannot write {path}: it is a folder; give a file name")
    if not path.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, f"cannot write {path}: folder {path.parent} does not exist")
    fd, tmp = _make_temporary(path)
    os.close(fd)
    os.unlink(tmp)


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` are one file (after symbolic links, and hard links: ``os.path.samefile``);
    ``False`` when either does not exist."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in chunks (archives and checkpoints can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
