"""One daemon per state directory: an exclusive `flock` on `recsched.lock` beside the ledger.

The kernel releases the lock when the process dies, however it dies, so a crash never leaves
a stale lock behind. The file holds the owner's PID so the refusal can name it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from scheduler.errors import RecschedError

LOCK_NAME = "recsched.lock"


class AlreadyRunning(RecschedError):
    """Another daemon holds the state directory."""


class StateLock:
    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise AlreadyRunning naming the holder's PID."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = holder_pid(self.path)
            raise AlreadyRunning(
                f"another recsched (pid {holder or 'unknown'}) is running on {self.path.parent}; "
                "one daemon per state directory (set state.url to run a second one)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


def holder_pid(path: Path) -> int | None:
    """The PID written by the daemon holding `path`, or None if nobody holds it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode(errors="replace").strip()
            return int(text) if text.isdigit() else 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
