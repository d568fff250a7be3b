"""A downstream OTLP receiver for tests: gRPC and HTTP on 127.0.0.1, recording what arrives.

Both servers run in their own threads (a sync ``grpc.server`` and a ``ThreadingHTTPServer``),
so the sink works the same from sync and async tests. Everything recorded is guarded by a
lock; the accessors return copies. ``fail_next`` makes the next requests fail the way a real
backend under pressure would, so tests can check classification and retry timing.

Like the Collector's OTLP receiver (pdata refuses to unmarshal a request holding a trace or
span id of the wrong length: "invalid length for ID"), a request with such an id is refused
whole: HTTP 400 with a ``google.rpc.Status`` (code 3), gRPC ``INVALID_ARGUMENT``. gRPC
requests over grpcio's default 4 MiB receive limit get ``RESOURCE_EXHAUSTED`` ("Received
message larger than max").
"""

from __future__ import annotations

import gzip
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from gateway.otlp.batch import ExportRequest, Signal, count_items
from gateway.otlp.json_codec import decode_json, encode_json
from tests.support.http_server import TrackingHTTPServer

Transport = Literal["grpc", "http"]

_RESPONSES: dict[Signal, type[Any]] = {
    Signal.TRACES: ExportTraceServiceResponse,
    Signal.METRICS: ExportMetricsServiceResponse,
    Signal.LOGS: ExportLogsServiceResponse,
}
_SERVICES = {
    Signal.TRACES: "opentelemetry.proto.collector.trace.v1.TraceService",
    Signal.METRICS: "opentelemetry.proto.collector.metrics.v1.MetricsService",
    Signal.LOGS: "opentelemetry.proto.collector.logs.v1.LogsService",
}
_PATHS = {f"/v1/{signal.value}": signal for signal in Signal}


def invalid_id(signal: Signal, request: Any) -> str | None:
    """The Collector's refusal for an id of the wrong length anywhere in the request."""
    if signal is Signal.TRACES:
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    ids = (span.trace_id, span.span_id, span.parent_span_id)
                    if any(len(i) not in (0, n) for i, n in zip(ids, (16, 8, 8), strict=True)):
                        return f"unmarshal: invalid length for ID (span {span.name!r})"
    elif signal is Signal.LOGS:
        for rl in request.resource_logs:
            for sl in rl.scope_logs:
                for log in sl.log_records:
                    if len(log.trace_id) not in (0, 16) or len(log.span_id) not in (0, 8):
                        return "unmarshal: invalid length for ID (log record)"
    return None


@dataclass(frozen=True)
class Received:
    """One accepted request. ``headers`` keys are lower-case; ``body`` is the protobuf (or
    JSON) payload after decompression, exactly as sent."""

    signal: Signal
    transport: Transport
    request: ExportRequest
    headers: dict[str, str]
    at: float
    body: bytes = b""


@dataclass(frozen=True)
class Refused:
    """One request answered with an error (``fail_next`` or invalid data)."""

    at: float
    transport: Transport
    signal: Signal


@dataclass
class _Failure:
    http_status: int
    retry_after: str | None
    grpc_code: grpc.StatusCode
    retry_delay: float | None

    def status(self, code: int, message: str) -> status_pb2.Status:
        status = status_pb2.Status(code=code, message=message)
        if self.retry_delay is not None:
            delay = Duration()
            delay.FromNanoseconds(int(self.retry_delay * 1e9))
            status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        return status


@dataclass
class _State:
    received: list[Received] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    failures: deque[_Failure] = field(default_factory=deque)


class OtlpSink:
    """An OTLP gRPC + HTTP receiver on 127.0.0.1 that records requests (see module doc)."""

    def __init__(self, grpc_port: int = 0, http_port: int = 0) -> None:
        self.grpc_port = grpc_port
        self.http_port = http_port
        self.delay = 0.0  # seconds to wait before answering (to provoke client timeouts)
        # When set, successful answers carry partial_success(rejected, message).
        self.partial_success: tuple[int, str] | None = None
        self._lock = threading.Lock()
        self._state = _State()
        self._stopping = threading.Event()
        self._grpc: grpc.Server | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._http: _HttpServer | None = None
        self._http_thread: threading.Thread | None = None

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> OtlpSink:
        self._stopping.clear()
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sink-grpc")
        # so_reuseport=0: binding a port somebody else holds must fail, not share it.
        server = grpc.server(self._executor, options=[("grpc.so_reuseport", 0)])
        server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    _SERVICES[signal],
                    {"Export": grpc.unary_unary_rpc_method_handler(self._grpc_handler(signal))},
                )
                for signal in Signal
            ]
        )
        port = server.add_insecure_port(f"127.0.0.1:{self.grpc_port}")
        if port == 0:
            raise OSError(f"sink: cannot bind gRPC port {self.grpc_port}")
        self.grpc_port = port
        server.start()
        self._grpc = server
        try:
            self._http = _HttpServer(("127.0.0.1", self.http_port), self)
        except OSError:
            self.stop()
            raise
        self.http_port = self._http.server_address[1]
        self._http_thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._http_thread.start()
        return self

    def stop(self) -> None:
        """Stop both servers, drop open connections and release the ports."""
        self._stopping.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.close_connections()
            self._http.server_close()
            self._http = None
        if self._http_thread is not None:
            self._http_thread.join(timeout=5)
            self._http_thread = None
        if self._grpc is not None:
            self._grpc.stop(grace=0).wait(timeout=5)
            self._grpc = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> OtlpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what arrived ------------------------------------------------------------------------

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._state.received)

    @property
    def refused(self) -> list[Refused]:
        with self._lock:
            return list(self._state.refused)

    def clear(self) -> None:
        with self._lock:
            self._state.received.clear()
            self._state.refused.clear()

    def spans(self) -> list[Span]:
        return [
            span
            for item in self.received
            if item.signal is Signal.TRACES
            for rs in item.request.resource_spans  # type: ignore[union-attr]
            for ss in rs.scope_spans
            for span in ss.spans
        ]

    def log_records(self) -> list[LogRecord]:
        return [
            record
            for item in self.received
            if item.signal is Signal.LOGS
            for rl in item.request.resource_logs  # type: ignore[union-attr]
            for sl in rl.scope_logs
            for record in sl.log_records
        ]

    def data_points_count(self) -> int:
        return self.item_count(Signal.METRICS)

    def item_count(self, signal: Signal) -> int:
        return sum(count_items(signal, r.request) for r in self.received if r.signal is signal)

    def wait_for(self, predicate: Callable[[OtlpSink], bool], timeout: float = 10.0) -> bool:
        """Poll ``predicate(self)`` until it is true (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate(self):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    # --- failure injection -------------------------------------------------------------------

    def fail_next(
        self,
        n: int,
        *,
        http_status: int = 503,
        retry_after: str | None = None,
        grpc_code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        retry_delay: float | None = None,
    ) -> None:
        """Answer the next ``n`` requests (either transport) with this error, unrecorded."""
        failure = _Failure(http_status, retry_after, grpc_code, retry_delay)
        with self._lock:
            self._state.failures.extend([failure] * n)

    def _take_failure(self, transport: Transport, signal: Signal) -> _Failure | None:
        with self._lock:
            if not self._state.failures:
                return None
            self._state.refused.append(Refused(time.monotonic(), transport, signal))
            return self._state.failures.popleft()

    def _refuse(self, transport: Transport, signal: Signal) -> None:
        with self._lock:
            self._state.refused.append(Refused(time.monotonic(), transport, signal))

    def _record(self, item: Received) -> None:
        with self._lock:
            self._state.received.append(item)

    def _response(self, signal: Signal) -> Any:
        response = _RESPONSES[signal]()
        if self.partial_success is not None:
            rejected, message = self.partial_success
            setattr(response.partial_success, f"rejected_{signal.item_name}", rejected)
            response.partial_success.error_message = message
        return response

    def _pause(self) -> None:
        if self.delay > 0:
            self._stopping.wait(self.delay)

    # --- gRPC --------------------------------------------------------------------------------

    def _grpc_handler(self, signal: Signal) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        def export(body: bytes, context: grpc.ServicerContext) -> bytes:
            self._pause()
            failure = self._take_failure("grpc", signal)
            if failure is not None:
                code = failure.grpc_code
                message = f"sink refused the request ({code.name})"
                if failure.retry_delay is not None:
                    status = failure.status(code.value[0], message)
                    context.set_trailing_metadata(
                        (("grpc-status-details-bin", status.SerializeToString()),)
                    )
                context.abort(code, message)
            try:
                request = signal.request_type.FromString(body)
            except DecodeError as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"undecodable request: {exc}")
            if problem := invalid_id(signal, request):
                self._refuse("grpc", signal)
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
            headers = {
                key: value for key, value in context.invocation_metadata() if isinstance(value, str)
            }
            self._record(Received(signal, "grpc", request, headers, time.monotonic(), body))
            return bytes(self._response(signal).SerializeToString())

        return export


class _HttpServer(TrackingHTTPServer):
    def __init__(self, address: tuple[str, int], sink: OtlpSink) -> None:
        self.sink = sink
        super().__init__(address, _HttpHandler)


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr."""

    def _send(
        self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_status(
        self, http_status: int, status: status_pb2.Status, json: bool, retry_after: str | None
    ) -> None:
        extra = {"Retry-After": retry_after} if retry_after else {}
        if json:
            self._send(http_status, encode_json(status), "application/json", extra)
        else:
            self._send(http_status, status.SerializeToString(), "application/x-protobuf", extra)

    def do_POST(self) -> None:
        sink = self.server.sink
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        signal = _PATHS.get(self.path.split("?", 1)[0])
        if signal is None:
            self._send(404, b"not found", "text/plain")
            return
        headers = {key.lower(): value for key, value in self.headers.items()}
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        is_json = content_type == "application/json"
        if not is_json and content_type != "application/x-protobuf":
            self._send(415, b"unsupported content type", "text/plain")
            return
        sink._pause()
        failure = sink._take_failure("http", signal)
        if failure is not None:
            # google.rpc.Code UNAVAILABLE in the body, as the Collector's OTLP receiver does.
            status = failure.status(14, f"sink refused the request (HTTP {failure.http_status})")
            self._send_status(failure.http_status, status, is_json, failure.retry_after)
            return
        try:
            if headers.get("content-encoding", "").lower() == "gzip":
                body = gzip.decompress(body)
            request = decode_json(signal, body) if is_json else signal.request_type.FromString(body)
        except (OSError, EOFError, ValueError, DecodeError) as exc:
            bad = status_pb2.Status(code=3, message=f"undecodable request: {exc}")
            self._send_status(400, bad, is_json, None)
            return
        if problem := invalid_id(signal, request):
            sink._refuse("http", signal)
            self._send_status(400, status_pb2.Status(code=3, message=problem), is_json, None)
            return
        sink._record(Received(signal, "http", request, headers, time.monotonic(), body))
        response = sink._response(signal)
        if is_json:
            self._send(200, encode_json(response), "application/json")
        else:
            self._send(200, response.SerializeToString(), "application/x-protobuf")
