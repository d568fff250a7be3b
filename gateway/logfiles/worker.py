"""A daemon thread that runs one maintenance task every ``interval`` seconds and whenever it
is woken (a rotation wakes it to compress and clean up at once).

A thread, not an asyncio task: the gateway's own log handler exists before any event loop,
and compressing 100 MB must not hold the loop. zlib releases the GIL while it works.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("otelgate.logfiles")
STOP_TIMEOUT = 5.0  # the longest close() waits for a run in progress (e.g. a gzip)


class Periodic:
    """Runs ``task`` in its own thread, at most one run at a time."""

    def __init__(self, name: str, task: Callable[[], None], interval: float) -> None:
        self.name = name
        self.task = task
        self.interval = interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (once); its first run is at once."""
        if self._thread is None:
            self._stopping.clear()
            self._wake.set()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Run the task soon (thread safe; cheap)."""
        self._wake.set()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop after the run in progress (if any) ends, waiting ``timeout`` seconds at most
        (never forever: exit must not hang on a file). A run still going then finishes on
        its own; every step of it is crash-safe."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            self._wake.set()
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                self.task()
            except Exception:  # a bug must not end the maintenance of a file for good
                log.exception("maintenance of %s failed", self.name)
