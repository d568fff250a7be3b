"""An Elasticsearch look-alike for tests: ``GET /`` and the ``_bulk`` API on 127.0.0.1.

It answers like Elasticsearch 9.x (``version="8.19.5"`` makes it an 8.x) with a single node:
data streams for the OTel-native ``*-*.otel-*`` and the built-in ``logs-*-*`` / ``metrics-*-*``
templates (and ``synthetics-*-*``, ``traces-*-*``), plain indices for other names, per-item
results with Elasticsearch's statuses and error bodies, dynamic mapping per target,
``http.max_content_length``, API-key / basic authentication and the media-type checks the
official clients meet. Each behaviour and its source is listed in
``tests/support/REAL_ELASTICSEARCH.md``. This module is the server as tests use it: start and
stop, what arrived (``requests``, ``documents``, ``data_streams``, ``refusals``), and the injected
failures: ``reject_next_items`` (per-item 429 / 503 / 500) and ``fail_next`` (a whole-request
error). Its parts: the HTTP layer (:mod:`tests.support.elasticsearch_http`) and its header rules
(:mod:`tests.support.elasticsearch_headers`), the reading of a bulk body
(:mod:`tests.support.elasticsearch_bulk`), what each action does
(:mod:`tests.support.elasticsearch_store`) and the dynamic mapping
(:mod:`tests.support.elasticsearch_mapping`).
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from tests.support.elasticsearch_bulk import Action
from tests.support.elasticsearch_headers import CHALLENGES
from tests.support.elasticsearch_http import EsHTTPServer, Reply
from tests.support.elasticsearch_store import DATA_STREAM_PATTERNS, Store
from tests.support.http_server import ServerThread

__all__ = ["ElasticsearchServer", "ItemRefusal", "RecordedRequest"]

MAX_CONTENT_LENGTH = 100 * 1024 * 1024  # http.max_content_length: 100mb


@dataclass(frozen=True)
class RecordedRequest:
    """A request as it arrived: headers with lower-case keys, the body after gzip decoding."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    status: int  # what the look-alike answered


class ItemRefusal(NamedTuple):
    """A bulk item that failed: its target as named in the request, the item status, the error."""

    data_stream: str
    status: int
    type: str
    reason: str


_FAILURE_BODIES: dict[int, tuple[str, str]] = {
    429: (
        "circuit_breaking_exception",
        "[parent] Data too large, data for [<http_request>] would "
        "be [1073741900/1gb], which is larger than the limit of [1073741824/1gb]",
    ),
    503: ("cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/2/no master];"),
    401: ("security_exception", "missing authentication credentials for REST request [/_bulk]"),
    403: (
        "security_exception",
        "action [indices:data/write/bulk] is unauthorized for user [otelgate]",
    ),
}


class ElasticsearchServer:
    """The look-alike (see module doc); threads, so sync and async tests can use it. Auth is off
    when neither ``api_keys`` (the exact values after ``ApiKey ``) nor ``users`` is given."""

    def __init__(
        self,
        port: int = 0,
        *,
        api_keys: Iterable[str] = (),
        users: dict[str, str] | None = None,
        max_content_length: int = MAX_CONTENT_LENGTH,
        version: str = "9.1.5",
        pipelines: Iterable[str] = (),
        data_stream_patterns: tuple[str, ...] = DATA_STREAM_PATTERNS,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.port = port
        self.tls = tls  # a server context: HTTPS (and mTLS when it requires client certs)
        self.api_keys = frozenset(api_keys)
        self.users = dict(users or {})
        self.max_content_length = max_content_length
        self.version = version
        self._store = Store(data_stream_patterns, frozenset(pipelines))
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._refusals: list[ItemRefusal] = []
        self._failures: deque[Reply] = deque()
        self._rejections: deque[int] = deque()
        self._served: ServerThread | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> ElasticsearchServer:
        http = EsHTTPServer(("127.0.0.1", self.port), self)
        if self.tls is not None:
            http.socket = self.tls.wrap_socket(http.socket, server_side=True)
        self._served = ServerThread(http)
        self.port = self._served.port
        return self

    def stop(self) -> None:
        """Stop serving and release the port (keep-alive connections are closed)."""
        if self._served is not None:
            self._served.stop()
            self._served = None

    def __enter__(self) -> ElasticsearchServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what arrived ------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def refusals(self) -> list[ItemRefusal]:
        """Every bulk item that failed (injected rejections included), in order."""
        with self._lock:
            return list(self._refusals)

    def documents(self, data_stream: str | None = None) -> list[dict[str, Any]]:
        """The stored sources (of one data stream or index, or of all), in arrival order."""
        with self._lock:
            targets = [t for t in self._store.targets.values() if data_stream in (None, t.name)]
            docs = [doc for target in targets for doc in target.docs.values()]
            return [doc.source for doc in sorted(docs, key=lambda d: d.arrival)]

    def data_streams(self) -> list[str]:
        """The data streams created so far, in creation order."""
        with self._lock:
            return [t.name for t in self._store.targets.values() if t.data_stream]

    def wait_for(
        self, predicate: Callable[[ElasticsearchServer], bool], timeout: float = 10.0
    ) -> bool:
        """Poll ``predicate(self)`` until true (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    # --- injected failures -------------------------------------------------------------------

    def reject_next_items(self, n: int, status: int = 429) -> None:
        """The next ``n`` items (of any bulk) that reach a shard fail with ``status``: 429
        ``es_rejected_execution_exception``, 503 ``unavailable_shards_exception``, other
        ``exception``; they are not stored."""
        with self._lock:
            self._rejections.extend([status] * n)

    def fail_next(
        self, status: int, body: str | None = None, retry_after: str | None = None, times: int = 1
    ) -> None:
        """Answer the next ``times`` requests (any path) with ``status`` and ``body`` (default:
        Elasticsearch's error body for that status, e.g. 429 ``circuit_breaking_exception``)."""
        headers = [("Retry-After", retry_after)] if retry_after else []
        if status == 401:
            headers += [("WWW-Authenticate", challenge) for challenge in CHALLENGES]
        if body is not None:
            try:
                payload: Any = json.loads(body)
            except ValueError:
                payload = body.encode()
                headers.append(("Content-Type", "text/plain; charset=UTF-8"))
        else:
            kind, reason = _FAILURE_BODIES.get(
                status, ("status_exception", f"injected failure (HTTP {status})")
            )
            error: dict[str, Any] = {"type": kind, "reason": reason}
            if status == 401:
                error["header"] = {"WWW-Authenticate": list(CHALLENGES)}
            if status == 429:
                error |= {"bytes_wanted": 1073741900, "bytes_limit": 1073741824,
                          "durability": "TRANSIENT"}  # fmt: skip
            payload = {"error": {"root_cause": [error], **error}, "status": status}
        with self._lock:
            self._failures.extend([Reply(status, payload, headers)] * times)

    # --- called by the HTTP handler (from its threads) ---------------------------------------

    def take_failure(self, path: str) -> Reply | None:
        with self._lock:
            return self._failures.popleft() if self._failures else None

    def record(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        status: int,
    ) -> None:
        with self._lock:
            self._requests.append(RecordedRequest(method, path, query, headers, body, status))

    def run_bulk(self, actions: list[Action], refresh: bool) -> list[dict[str, Any]]:
        """Run a parsed bulk against the store; the items of the answer."""

        def take_rejection() -> int | None:
            return self._rejections.popleft() if self._rejections else None

        with self._lock:
            items, refusals = self._store.execute(actions, refresh, take_rejection)
            self._refusals.extend(ItemRefusal(*refusal) for refusal in refusals)
        return items
