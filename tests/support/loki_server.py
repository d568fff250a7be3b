"""A Loki conformance server for tests: Loki's push API and OTLP endpoint on 127.0.0.1.

``POST /loki/api/v1/push`` checks every request against the published wire format and what
Loki's distributor validates, answering 204 or a Loki-style ``text/plain`` error:

* protobuf: ``Content-Type: application/x-protobuf``, a snappy **block** (raw) body (the framed
  format is refused), a ``logproto.PushRequest`` decoded with message classes built here from
  ``pkg/push/push.proto`` (independently of the exporter's) and free of unknown fields, so a
  wrong field number or wire type is caught;
* JSON: ``Content-Type: application/json``, optionally gzip, ``{"streams":[{"stream":{..},
  "values":[["<ns as string>","line",{metadata}]]}]}`` and nothing else;
* both: the labels parse as a ``{k="v",...}`` selector (Go string escapes) with 1..15 valid,
  distinct names and non-empty values; lines at most 256KB; structured metadata names valid,
  at most 128 pairs / 64KB per entry; entries in timestamp order within each stream of a
  request (Loki with ``unordered_writes: false`` answers ``out_of_order``), and across requests
  no older than the stream's newest entry minus 1h (Loki's default window).

``POST /otlp/v1/logs`` takes OTLP protobuf (optionally gzip) and answers 204 like Loki.
``fail_next`` answers the next requests with 429 / 5xx / 4xx and a text body.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from tests.support.http_server import TrackingHTTPServer
from tests.support.loki_wire import (
    OUT_OF_ORDER_WINDOW_NS,
    LokiEntry,
    LokiStream,
    Rejected,
    bad_request,
    check_entry,
    check_labels,
    decode_json,
    decode_protobuf,
)

__all__ = ["LokiEntry", "LokiPush", "LokiServer", "LokiStream", "OtlpLogsPush", "Refusal"]


@dataclass(frozen=True)
class LokiPush:
    """One accepted push: ``kind`` is ``protobuf`` or ``json``; headers are lower-case."""

    kind: str
    streams: tuple[LokiStream, ...]
    headers: dict[str, str]
    at: float
    selectors: tuple[str, ...] = ()  # the labels strings exactly as sent (protobuf)


@dataclass(frozen=True)
class OtlpLogsPush:
    request: ExportLogsServiceRequest
    headers: dict[str, str]
    at: float


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
    pushes: list[LokiPush] = field(default_factory=list)
    otlp: list[OtlpLogsPush] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    failures: deque[_Failure] = field(default_factory=deque)
    newest: dict[tuple[tuple[str, str], ...], int] = field(default_factory=dict)


class LokiServer:
    """The conformance server (see module doc); threads, so sync and async tests can use it."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self._lock = threading.Lock()
        self._state = _State()
        self._http: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LokiServer:
        self._http = _Server(("127.0.0.1", self.port), self)
        self.port = self._http.server_address[1]
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port (keep-alive connections are closed)."""
        if self._http is not None:
            self._http.shutdown()
            self._http.close_connections()
            self._http.server_close()
            self._http = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LokiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what arrived ------------------------------------------------------------------------

    @property
    def pushes(self) -> list[LokiPush]:
        with self._lock:
            return list(self._state.pushes)

    @property
    def otlp(self) -> list[OtlpLogsPush]:
        with self._lock:
            return list(self._state.otlp)

    @property
    def refused(self) -> list[Refusal]:
        with self._lock:
            return list(self._state.refused)

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

    # --- request handling (called from handler threads) --------------------------------------

    def _take_failure(self, path: str) -> _Failure | None:
        with self._lock:
            if not self._state.failures:
                return None
            failure = self._state.failures.popleft()
            refusal = Refusal(time.monotonic(), path, failure.status, failure.body, True)
            self._state.refused.append(refusal)
            return failure

    def _refuse(self, path: str, error: Rejected) -> None:
        with self._lock:
            refusal = Refusal(time.monotonic(), path, error.status, str(error), False)
            self._state.refused.append(refusal)

    def _accept_push(self, kind: str, streams: list[LokiStream], headers: dict[str, str],
                     selectors: list[str]) -> None:  # fmt: skip
        """Validate limits and order (all or nothing), then record."""
        for stream in streams:
            shown = json.dumps(stream.labels, sort_keys=True)
            check_labels(stream.labels, shown)
            previous = None
            for entry in stream.entries:
                check_entry(entry, shown)
                if previous is not None and entry.ns < previous:
                    raise bad_request(
                        f"entry with timestamp {entry.ns} out of order for stream {shown}"
                    )
                previous = entry.ns
        with self._lock:
            newest = dict(self._state.newest)
            for stream in streams:
                key = tuple(sorted(stream.labels.items()))
                for entry in stream.entries:
                    latest = newest.get(key, entry.ns)
                    if entry.ns < latest - OUT_OF_ORDER_WINDOW_NS:
                        raise bad_request(f"entry too far behind for stream {dict(key)}")
                    newest[key] = max(latest, entry.ns)
            self._state.newest = newest
            push = LokiPush(kind, tuple(streams), headers, time.monotonic(), tuple(selectors))
            self._state.pushes.append(push)

    def _accept_otlp(self, request: ExportLogsServiceRequest, headers: dict[str, str]) -> None:
        with self._lock:
            self._state.otlp.append(OtlpLogsPush(request, headers, time.monotonic()))


class _Server(TrackingHTTPServer):
    def __init__(self, address: tuple[str, int], loki: LokiServer) -> None:
        self.loki = loki
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr."""

    def _answer(self, status: int, body: bytes = b"", extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        loki = self.server.loki
        path = self.path.split("?", 1)[0]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if path not in ("/loki/api/v1/push", "/otlp/v1/logs"):
            self._answer(404, b"404 page not found\n")
            return
        failure = loki._take_failure(path)
        if failure is not None:
            extra = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            self._answer(failure.status, failure.body.encode(), extra)
            return
        headers = {key.lower(): value for key, value in self.headers.items()}
        try:
            self._handle(path, body, headers)
        except Rejected as error:
            loki._refuse(path, error)
            self._answer(error.status, f"{error}\n".encode())
            return
        self._answer(204)

    def _handle(self, path: str, body: bytes, headers: dict[str, str]) -> None:
        loki = self.server.loki
        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding not in ("", "gzip", "snappy"):
            raise bad_request(f'Content-Encoding "{encoding}" not supported')
        if encoding == "snappy" and media != "application/x-protobuf":
            raise bad_request("Content-Encoding snappy is only for protobuf bodies")
        if encoding == "gzip":
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError) as exc:
                raise bad_request(f"gzip: {exc}") from None
        if path == "/otlp/v1/logs":
            if media != "application/x-protobuf":
                raise Rejected(415, f"unsupported content type {media!r}")
            try:
                loki._accept_otlp(ExportLogsServiceRequest.FromString(body), headers)
            except DecodeError as exc:
                raise bad_request(f"undecodable OTLP request: {exc}") from None
            return
        if media == "application/x-protobuf":
            streams, selectors = decode_protobuf(body)
            loki._accept_push("protobuf", streams, headers, selectors)
        elif media == "application/json":
            loki._accept_push("json", decode_json(body), headers, [])
        else:
            raise Rejected(415, f"unsupported Content-Type {media!r}")
