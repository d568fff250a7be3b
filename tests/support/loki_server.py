"""A Loki conformance server for tests: Loki's push API and OTLP endpoint on 127.0.0.1.

It answers like a real Loki 3 with default limits (each behaviour and its source is listed in
``tests/support/REAL_LOKI.md``). This module is the server as tests use it: start and stop,
what arrived, and ``fail_next``, which answers the next requests with 429 / 5xx / 4xx and a
text body. Its parts: the HTTP API (paths, content types, encodings, error bodies) in
:mod:`tests.support.loki_http`, the push wire format in :mod:`tests.support.loki_wire`, and
what Loki stores of a push, judged by Loki's rules (partial acceptance, burst, age, order,
duplicates, the OTLP limits), in :mod:`tests.support.loki_store`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.support.http_server import ServerThread
from tests.support.loki_http import LokiHTTPServer
from tests.support.loki_store import BURST_BYTES, MAX_AGE_NS, LokiPush, LokiStore, OtlpLogsPush
from tests.support.loki_wire import LokiEntry, Rejected

__all__ = ["LokiServer", "Refusal"]


@dataclass(frozen=True)
class Refusal:
    """A request answered with an error: injected (``fail_next``) or a validation failure."""

    at: float
    path: str
    status: int
    message: str
    injected: bool


@dataclass
class _Failure:
    status: int
    retry_after: str | None
    body: str


@dataclass
class _State:
    refused: list[Refusal] = field(default_factory=list)
    failures: deque[_Failure] = field(default_factory=deque)


class LokiServer:
    """The conformance server (see module doc); threads, so sync and async tests can use it."""

    def __init__(
        self,
        port: int = 0,
        *,
        max_age_ns: int | None = MAX_AGE_NS,
        burst_bytes: int = BURST_BYTES,
        unordered_writes: bool = True,
    ) -> None:
        """``max_age_ns`` None is Loki's ``reject_old_samples: false`` (for fixed, old test
        timestamps)."""
        self.port = port
        self.store = LokiStore(
            max_age_ns=max_age_ns, burst_bytes=burst_bytes, unordered_writes=unordered_writes
        )
        self._lock = threading.Lock()  # guards what is not in the store
        self._state = _State()
        self._served: ServerThread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LokiServer:
        self._served = ServerThread(LokiHTTPServer(("127.0.0.1", self.port), self))
        self.port = self._served.port
        return self

    def stop(self) -> None:
        """Stop serving and release the port (keep-alive connections are closed)."""
        if self._served is not None:
            self._served.stop()
            self._served = None

    def __enter__(self) -> LokiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what arrived ------------------------------------------------------------------------

    @property
    def pushes(self) -> list[LokiPush]:
        with self.store.lock:
            return list(self.store.pushes)

    @property
    def otlp(self) -> list[OtlpLogsPush]:
        with self.store.lock:
            return list(self.store.otlp)

    @property
    def refused(self) -> list[Refusal]:
        with self._lock:
            return list(self._state.refused)

    @property
    def ignored(self) -> list[str]:
        """Why each entry refused alone (with its push answered 400) was refused."""
        with self.store.lock:
            return list(self.store.ignored)

    @property
    def duplicates(self) -> int:
        """Entries ignored because an identical one was held."""
        with self.store.lock:
            return self.store.duplicates

    def entries(self) -> list[tuple[dict[str, str], LokiEntry]]:
        """Every accepted entry with its stream labels, in arrival order."""
        return [(s.labels, e) for push in self.pushes for s in push.streams for e in s.entries]

    def wait_for(self, predicate: Callable[[LokiServer], bool], timeout: float = 10.0) -> bool:
        """Poll ``predicate(self)`` until true (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def fail_next(
        self, n: int, status: int = 500, retry_after: str | None = None, body: str = ""
    ) -> None:
        """Answer the next ``n`` requests (any path) with ``status`` and a text body."""
        text = body or f"injected failure (HTTP {status})"
        with self._lock:
            self._state.failures.extend([_Failure(status, retry_after, text)] * n)

    # --- called by the HTTP handler (from its threads) ---------------------------------------

    def take_failure(self, path: str) -> _Failure | None:
        """The next injected failure, if any, recorded as a refusal of ``path``."""
        with self._lock:
            if not self._state.failures:
                return None
            failure = self._state.failures.popleft()
            refusal = Refusal(time.monotonic(), path, failure.status, failure.body, True)
            self._state.refused.append(refusal)
            return failure

    def refuse(self, path: str, error: Rejected) -> None:
        """Record that a request to ``path`` was refused with ``error``."""
        with self._lock:
            refusal = Refusal(time.monotonic(), path, error.status, str(error), False)
            self._state.refused.append(refusal)
