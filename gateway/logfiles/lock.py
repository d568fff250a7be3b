"""One writer per file: an exclusive, non-blocking ``flock`` on ``.<name>.lock`` beside it.

The lock file has the name the audit trail's lock (:class:`gateway.audit.files.TrailLock`)
uses, so a log file and an audit trail on one path exclude each other too. A second writer,
in this process or another, fails to open instead of renaming and gzipping under the first.
The lock goes with the process: a crash never leaves a stale one (the file itself stays).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class FileInUseError(OSError):
    """Another writer holds the file's lock."""


class WriterLock:
    """The lock of the file at ``active`` (not reentrant: take it once per writer)."""

    def __init__(self, active: Path) -> None:
        self.active = active
        self.path = active.with_name(f".{active.name}.lock")
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this writer holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock (no-op when held); :class:`FileInUseError` when another has it."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FileInUseError(
                f"{self.active} is in use by another writer (lock {self.path}): give each "
                "writer its own path"
            ) from None
        except OSError:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        """Release the lock (the lock file stays, harmless)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
