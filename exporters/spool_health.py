"""Whether a disk spool can write, and how it finds out that it can again.

After a failed write (a full disk, an I/O error) the spool is *unwritable*: the queue refuses
data with a retryable 503 and readiness says why. Clients are then told to go away, so no
append would ever try again; instead a probe writes (and deletes) a scratch file as large as
the failed write, up to 1 MiB, every ``retry_interval`` seconds and as soon as delivered data
frees space. The first successful probe or append makes the spool writable again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

from exporters.spool_io import probe
from gateway.tasks import cancel_and_wait

log = logging.getLogger("otelgate.spool")
PROBE_MAX = 1024 * 1024


class WriteHealth:
    """The spool's write condition: :attr:`problem` is None while it can write."""

    def __init__(self, directory: Path, retry_interval: float = 1.0) -> None:
        self.directory = directory
        self.retry_interval = retry_interval
        self.problem: str | None = None
        self.since: float | None = None  # wall clock, seconds
        self._probe_bytes = 1
        self._task: asyncio.Task[None] | None = None
        self._freed = asyncio.Event()
        self._closed = False

    def failed(self, exc: BaseException, nbytes: int) -> None:
        """A write of ``nbytes`` failed: refuse data until a write succeeds."""
        if self.problem is None:
            self.since = time.time()
        self.problem = _describe(exc)
        self._probe_bytes = max(1, min(nbytes, PROBE_MAX))
        log.error(
            "spool %s: write failed: %s; new data is refused (503) until a write succeeds "
            "(tried every %gs and whenever delivered data frees space)",
            self.directory, exc, self.retry_interval,
        )  # fmt: skip
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._probe_loop())

    def succeeded(self) -> None:
        """A write succeeded."""
        if self.problem is None:
            return
        waited = time.time() - (self.since or time.time())
        log.warning(
            "spool %s: writing again after %.1fs (was: %s)", self.directory, waited, self.problem
        )
        self.problem = self.since = None

    def space_freed(self) -> None:
        """A segment was deleted: probe now rather than at the next interval."""
        if self.problem is not None:
            self._freed.set()

    async def close(self) -> None:
        """Stop probing."""
        self._closed = True
        await cancel_and_wait(self._task)

    async def _probe_loop(self) -> None:
        try:
            while self.problem is not None and not self._closed:
                self._freed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._freed.wait(), self.retry_interval)
                if self.problem is None or self._closed:
                    break
                try:
                    await asyncio.to_thread(probe, self.directory, self._probe_bytes)
                except OSError as exc:
                    if self.problem is not None:  # unless an append succeeded meanwhile
                        self.problem = _describe(exc)
                    continue
                self.succeeded()
        finally:
            self._task = None


def _describe(exc: BaseException) -> str:
    """The problem as clients and ``/health`` see it (no file names: logs have them)."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"cannot write to the disk spool: [Errno {exc.errno}] {exc.strerror}"
    return f"cannot write to the disk spool: {type(exc).__name__}: {exc}"
