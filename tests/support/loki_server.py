"""A Loki conformance server for tests: Loki's push API and OTLP endpoint on 127.0.0.1.

It answers like a real Loki 3 with default limits (each behaviour and its source is listed in
``tests/support/REAL_LOKI.md``). ``POST /loki/api/v1/push`` checks every request against the
published wire format:

* protobuf: ``Content-Type: application/x-protobuf``, a snappy **block** (raw) body (the framed
  format is refused), a ``logproto.PushRequest`` decoded with message classes built here from
  ``pkg/push/push.proto`` (independently of the exporter's) and free of unknown fields, so a
  wrong field number or wire type is caught;
* JSON: ``Content-Type: application/json``, optionally gzip, ``{"streams":[{"stream":{..},
  "values":[["<ns as string>","line",{metadata}]]}]}`` and nothing else.

Then, like Loki: a structured-metadata name that normalises to nothing refuses the whole push
(500); a push bigger than the ingestion burst (6 MB) is refused whole with 429, every time;
otherwise each stream and entry is judged alone (labels, line size, metadata size, age,
the out-of-order window) and the valid ones are **stored even when others are refused**: the
answer is then 400 naming the refused entries. An entry identical (timestamp, line) to one
held is ignored. Entries out of order within a push are accepted (``unordered_writes``).

``POST /otlp/v1/logs`` takes OTLP protobuf (optionally gzip) and answers 204 like Loki. Its
errors are ``google.rpc.Status`` protobuf bodies sent as ``application/octet-stream``, as
Loki's are: an attribute key that normalises to nothing refuses the whole request (400); a
record whose line, structured metadata (its own, scope and non-label resource attributes) or
label values are over the limits above is refused alone (400), the others stored.
``fail_next`` answers the next requests with 429 / 5xx / 4xx and a text body.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from tests.support.http_server import TrackingHTTPServer
from tests.support.loki_wire import (
    OUT_OF_ORDER_WINDOW_NS,
    LokiEntry,
    LokiStream,
    Rejected,
    bad_request,
    check_labels,
    decode_json,
    decode_protobuf,
    entry_problem,
    normalize_name,
    otlp_keys,
    otlp_label_problem,
    otlp_record_problem,
)

BURST_BYTES = 6 * 1024 * 1024  # ingestion_burst_size_mb: 6
RATE_BYTES = 4 * 1024 * 1024  # ingestion_rate_mb: 4
MAX_AGE_NS = 7 * 24 * 3600 * 10**9  # reject_old_samples_max_age: 168h


def selector_text(labels: dict[str, str]) -> str:
    """Labels shown as Loki shows a stream in its messages."""
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


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
    held: dict[tuple[tuple[str, str], ...], set[tuple[int, str]]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)  # why each refused entry was refused
    duplicates: int = 0


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
        self.max_age_ns = max_age_ns
        self.burst_bytes = burst_bytes
        self.unordered_writes = unordered_writes
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

    @property
    def ignored(self) -> list[str]:
        """Why each entry refused alone (with its push answered 400) was refused."""
        with self._lock:
            return list(self._state.ignored)

    @property
    def duplicates(self) -> int:
        """Entries ignored because an identical one was held."""
        with self._lock:
            return self._state.duplicates

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
        """Judge the push like Loki (see module doc): store what is valid, then raise a 400
        naming what was not."""
        lines = size = 0
        for stream in streams:
            for entry in stream.entries:
                for name, _ in entry.metadata:
                    normalize_name(name)  # 500 for the whole push
                lines += 1
                size += len(entry.line.encode())
                size += sum(len(k.encode()) + len(v.encode()) for k, v in entry.metadata)
        if size > self.burst_bytes:
            raise Rejected(
                429,
                f"ingestion rate limit exceeded for user fake (limit: {RATE_BYTES} bytes/sec) "
                f"while attempting to ingest '{lines}' lines totaling '{size}' bytes, reduce log "
                "volume or contact your Loki administrator to see if the limit can be increased",
            )
        problems: list[str] = []
        kept_streams: list[LokiStream] = []
        with self._lock:
            state = self._state
            for stream in streams:
                shown = selector_text(stream.labels)
                try:
                    check_labels(stream.labels, shown)
                except Rejected as error:
                    problems += [str(error)] * len(stream.entries)
                    continue
                kept = self._judge(stream, shown, problems)
                if kept:
                    kept_streams.append(LokiStream(stream.labels, tuple(kept)))
            state.ignored += problems
            if kept_streams:
                push = LokiPush(
                    kind, tuple(kept_streams), headers, time.monotonic(), tuple(selectors)
                )
                state.pushes.append(push)
        if problems:
            raise Rejected(400, "\n".join(problems[:10]) + f"\ntotal ignored: {len(problems)}")

    def _judge(self, stream: LokiStream, shown: str, problems: list[str]) -> list[LokiEntry]:
        """The entries of ``stream`` Loki stores (called with the lock held)."""
        state = self._state
        key = tuple(sorted(stream.labels.items()))
        held = state.held.setdefault(key, set())
        oldest = time.time_ns() - self.max_age_ns if self.max_age_ns is not None else None
        kept: list[LokiEntry] = []
        for entry in stream.entries:
            problem = entry_problem(entry, shown)
            newest = state.newest.get(key)
            if problem is None and oldest is not None and entry.ns < oldest:
                problem = (f"entry for stream '{shown}' has timestamp too old: {entry.ns}, "
                           f"oldest acceptable timestamp is: {oldest}")  # fmt: skip
            if problem is None and newest is not None:
                if entry.ns < newest - OUT_OF_ORDER_WINDOW_NS:
                    problem = (
                        f"entry with timestamp {entry.ns} ignored, reason: 'entry too far behind'"
                    )
                elif not self.unordered_writes and entry.ns < newest:
                    problem = (
                        f"entry with timestamp {entry.ns} ignored, reason: 'entry out of order'"
                    )
            if problem is not None:
                problems.append(problem)
                continue
            if (entry.ns, entry.line) in held:
                state.duplicates += 1
                continue
            held.add((entry.ns, entry.line))
            state.newest[key] = max(newest or entry.ns, entry.ns)
            kept.append(entry)
        return kept

    def _accept_otlp(self, request: ExportLogsServiceRequest, headers: dict[str, str]) -> None:
        """Judge the request like Loki's OTLP endpoint (see module doc): keep what it stores."""
        for key in otlp_keys(request):
            try:
                normalize_name(key)
            except Rejected as error:
                raise Rejected(400, str(error)) from None
        kept = ExportLogsServiceRequest()
        kept.CopyFrom(request)
        problems: list[str] = []
        for rl in kept.resource_logs:
            problem = otlp_label_problem(rl)
            for sl in rl.scope_logs:
                keep = []
                for record in sl.log_records:
                    why = problem or otlp_record_problem(rl, sl, record)
                    if why is None:
                        keep.append(record)
                    else:
                        problems.append(why)
                del sl.log_records[:]
                sl.log_records.extend(keep)
        with self._lock:
            self._state.ignored += problems
            self._state.otlp.append(OtlpLogsPush(kept, headers, time.monotonic()))
        if problems:
            raise Rejected(400, "\n".join(problems[:10]))


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
        if body and "Content-Type" not in (extra or {}):
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
            if path == "/otlp/v1/logs":  # a google.rpc.Status, typed as Loki types it
                status = status_pb2.Status(
                    code=3 if error.status == 400 else 13, message=str(error)
                )
                body = status.SerializeToString()
                self._answer(error.status, body, {"Content-Type": "application/octet-stream"})
                return
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
