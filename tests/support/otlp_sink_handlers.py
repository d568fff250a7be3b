"""How the OTLP sink answers a request, over gRPC and over HTTP (``/v1/{signal}``).

A request (over HTTP: one to a known path and content type) waits ``sink.delay``, then takes
the next failure ``fail_next`` queued, if any: gRPC aborts with its code (with a ``RetryInfo``
in ``grpc-status-details-bin`` when it has a retry delay), HTTP answers its status with a
``google.rpc.Status`` (code UNAVAILABLE) in the request's encoding and ``Retry-After`` when
set. Like the Collector's OTLP receiver (pdata refuses to unmarshal a request holding a trace
or span id of the wrong length: "invalid length for ID"), a request with such an id is refused
whole: HTTP 400 with a ``google.rpc.Status`` (code 3), gRPC ``INVALID_ARGUMENT``. gRPC requests
over grpcio's default 4 MiB receive limit get ``RESOURCE_EXHAUSTED`` ("Received message larger
than max"). A request accepted is recorded and answered with ``sink.response``
(``partial_success`` when the sink has one).
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import DecodeError
from google.rpc import status_pb2

from gateway.otlp.batch import Signal
from gateway.otlp.json_codec import decode_json, encode_json
from tests.support.http_server import QuietHandler, TrackingHTTPServer

if TYPE_CHECKING:
    from tests.support.otlp_sink import OtlpSink

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


# --- gRPC ------------------------------------------------------------------------------------


def grpc_handlers(sink: OtlpSink) -> list[grpc.GenericRpcHandler]:
    """The ``Export`` method of each signal's OTLP service."""
    return [
        grpc.method_handlers_generic_handler(
            _SERVICES[signal],
            {"Export": grpc.unary_unary_rpc_method_handler(_grpc_export(sink, signal))},
        )
        for signal in Signal
    ]


def _grpc_export(sink: OtlpSink, signal: Signal) -> Callable[[bytes, grpc.ServicerContext], bytes]:
    def export(body: bytes, context: grpc.ServicerContext) -> bytes:
        sink.pause()
        failure = sink.take_failure("grpc", signal)
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
            sink.refuse("grpc", signal)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        headers = {
            key: value for key, value in context.invocation_metadata() if isinstance(value, str)
        }
        sink.record(signal, "grpc", request, headers, time.monotonic(), body)
        return bytes(sink.response(signal).SerializeToString())

    return export


# --- HTTP ------------------------------------------------------------------------------------


class SinkHTTPServer(TrackingHTTPServer):
    """The HTTP server of an :class:`~tests.support.otlp_sink.OtlpSink`."""

    def __init__(self, address: tuple[str, int], sink: OtlpSink) -> None:
        self.sink = sink
        super().__init__(address, _HttpHandler)


class _HttpHandler(QuietHandler):
    server: SinkHTTPServer

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
        sink.pause()
        failure = sink.take_failure("http", signal)
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
            sink.refuse("http", signal)
            self._send_status(400, status_pb2.Status(code=3, message=problem), is_json, None)
            return
        sink.record(signal, "http", request, headers, time.monotonic(), body)
        response = sink.response(signal)
        if is_json:
            self._send(200, encode_json(response), "application/json")
        else:
            self._send(200, response.SerializeToString(), "application/x-protobuf")
