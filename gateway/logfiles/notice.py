"""Lines about the gateway's own log file, written straight to stderr.

Never through :mod:`logging`: the writer of that file may hold the handler's lock (as
``logging.shutdown()`` does while it closes it), and a full disk must not print a traceback
per record. Each kind of notice is printed at most once per ``interval``, with the count of
the ones held back since the last line.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

INTERVAL = 60.0


class Throttled:
    """At most one stderr line per ``interval`` (``clock``: monotonic seconds)."""

    def __init__(self, interval: float = INTERVAL, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        self._pending = 0
        self._next = -float("inf")

    def count(self) -> int | None:
        """Count one more event; how many since the last line when a line is due, else None."""
        with self._lock:
            self._pending += 1
            now = self.clock()
            if now < self._next:
                return None
            self._next = now + self.interval
            pending, self._pending = self._pending, 0
            return pending

    def flush(self) -> int:
        """The events counted and not printed yet (now forgotten)."""
        with self._lock:
            pending, self._pending = self._pending, 0
            return pending


def to_stderr(line: str) -> None:
    """Write ``otelgate: <line>`` to stderr, as it is now (best effort)."""
    try:
        sys.stderr.write(f"otelgate: {line}\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):  # closed or missing: nowhere left to tell
        pass


class Notices:
    """A log file's own problems for stderr, one line per ``interval`` at most."""

    def __init__(self, interval: float = INTERVAL) -> None:
        self.throttle = Throttled(interval)

    def __call__(self, message: str) -> None:
        held = self.throttle.count()
        if held is not None:
            more = f" ({held - 1} more notices held back since the last)" if held > 1 else ""
            to_stderr(f"{message}{more}")
