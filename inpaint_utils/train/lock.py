"""The run lock: ``run_dir/train.lock`` while a training writes into ``run_dir`` (:class:`_RunLock`).
"""
from __future__ import annotations

import contextlib
import json
import os
import shlex
import socket
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .settings import RunLockedError

__all__ = ["LOCK_FILE"]

#: held in the run folder while a training writes there (see :class:`_RunLock`)
LOCK_FILE = "train.lock"


class _RunLock:
    """``run_dir/train.lock`` while a training writes into ``run_dir``, so that a second one into the same
    folder stops at once instead of deleting the first one's checkpoints and mixing ``metrics.csv``.

    The file is created with ``O_CREAT | O_EXCL`` (one process wins, also on a shared file system) and
    holds the JSON ``{"pid", "host", "since", "command"}`` of its holder. :meth:`release` removes it
    (``train`` calls it in a ``finally``: on return, on an error and on Ctrl-C). A lock left by a killed
    process (SIGKILL, a crashed kernel) whose pid no longer runs on this host is taken over with a
    warning; one from another host is never guessed dead (the message says which file to delete).
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self.mine: dict[str, Any] | None = None

    def _read(self) -> dict[str, Any] | None:
        """The holder, or ``None`` when the file is gone, empty (being written) or not a lock."""
        try:
            holder = json.loads(self.path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None
        return holder if isinstance(holder, dict) and isinstance(holder.get("pid"), int) else None

    @staticmethod
    def _stale(holder: dict[str, Any]) -> bool:
        if holder.get("host") != socket.gethostname() or holder["pid"] == os.getpid():
            return False
        try:
            os.kill(holder["pid"], 0)
        except ProcessLookupError:
            return True
        except (PermissionError, OSError):  # alive, under another user
            return False
        return False

    def _describe(self, holder: dict[str, Any] | None) -> str:
        if holder is None:
            return (f"{self.path} exists but holds no readable lock; if no training is running there, delete "
                    f"it and start again")
        return (f"another training holds {self.path}: pid {holder['pid']} on {holder.get('host')!r} since "
                f"{holder.get('since')} ({holder.get('command') or 'unknown command'}); wait for it, stop it, or use "
                f"another run name (delete the lock file only if that process is gone)")

    def acquire(self) -> None:
        """Take the lock or raise :class:`RunLockedError` naming the holder."""
        mine = {"pid": os.getpid(), "host": socket.gethostname(),
                "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "command": shlex.join(sys.argv) if sys.argv and sys.argv[0] else sys.executable}
        for _ in range(20):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self._read()
                if holder is None:  # just created by another process, which is writing it: look again
                    time.sleep(0.05)
                    holder = self._read()
                if holder is None or not self._stale(holder):
                    if holder is None and not self.path.exists():
                        continue  # released meanwhile
                    raise RunLockedError(self._describe(holder)) from None
                self._take_over(holder)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(mine, f)
                f.flush()
                os.fsync(f.fileno())
            self.mine = mine
            return
        raise RunLockedError(self._describe(self._read()))

    def _take_over(self, holder: dict[str, Any]) -> None:
        """Move a stale lock aside (one rename: of several processes taking it over, one moves it) and
        warn; if what was moved is no longer that stale lock (a live one replaced it), put it back."""
        aside = self.path.with_name(f".{LOCK_FILE}.stale-{os.getpid()}")
        try:
            os.replace(self.path, aside)
        except FileNotFoundError:
            return
        try:
            moved = json.loads(aside.read_text())
        except (OSError, ValueError):
            moved = None
        if moved != holder:
            with contextlib.suppress(FileExistsError):
                os.link(aside, self.path)
        else:
            warnings.warn(f"{self.path} was left by pid {holder['pid']} on {holder.get('host')!r} (since "
                          f"{holder.get('since')}), which no longer runs: taking the run folder over", stacklevel=4)
        aside.unlink(missing_ok=True)

    def release(self) -> None:
        """Remove the lock file if it is still this process's."""
        if self.mine is not None and self._read() == self.mine:
            self.path.unlink(missing_ok=True)
        self.mine = None

