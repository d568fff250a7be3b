"""A lean counting OTLP/gRPC sink: the downstream of every benchmark target.

``python -m benchmarks.sink --ports P1,P2 --control PC`` serves the three OTLP Export
services on each of ``P1,P2`` (one port per exporter of the target) and answers every export
with an empty response. It only counts items per port and signal; ``GET /counts`` on the
control port returns them as JSON (``{"<port>": {"traces": n, ...}, "last": {"traces":
<time.monotonic() of the last arrival>, ...}}``).

Counting parses a skeleton of the request (resource -> scope -> repeated bytes) with the C
protobuf runtime, so spans and log records are never decoded field by field; metrics are
parsed in full (data points sit under one of five metric kinds).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

SERVICES = {
    "traces": "opentelemetry.proto.collector.trace.v1.TraceService",
    "metrics": "opentelemetry.proto.collector.metrics.v1.MetricsService",
    "logs": "opentelemetry.proto.collector.logs.v1.LogsService",
}
_POINT_KINDS = ("gauge", "sum", "histogram", "exponential_histogram", "summary")


def _skeleton_request() -> Any:
    """Message classes reading only ``resource_*[1].scope_*[2].items[2]`` as bytes: the
    field numbers shared by ExportTraceServiceRequest and ExportLogsServiceRequest."""
    proto = descriptor_pb2.FileDescriptorProto(name="bench_count.proto", package="benchcount")
    repeated = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
    message_type = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
    for name, child, number in (("Request", "Resource", 1), ("Resource", "Scope", 2)):
        message = proto.message_type.add(name=name)
        message.field.add(
            name="children", number=number, label=repeated, type=message_type,
            type_name=f".benchcount.{child}",
        )  # fmt: skip
    scope = proto.message_type.add(name="Scope")
    scope.field.add(
        name="items", number=2, label=repeated, type=descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("benchcount.Request"))


_REQUEST = _skeleton_request()


def count_items(signal: str, body: bytes) -> int:
    """Spans, log records or data points in an OTLP request body."""
    if signal == "metrics":
        request = ExportMetricsServiceRequest.FromString(body)
        total = 0
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    kind = metric.WhichOneof("data")
                    if kind in _POINT_KINDS:
                        total += len(getattr(metric, kind).data_points)
        return total
    skeleton = _REQUEST.FromString(body)
    return sum(len(scope.items) for resource in skeleton.children for scope in resource.children)


class Counts:
    """Items received, per port and signal (thread-safe)."""

    def __init__(self, ports: Sequence[int]) -> None:
        self._lock = threading.Lock()
        self._counts = {port: dict.fromkeys(SERVICES, 0) for port in ports}
        self._last = dict.fromkeys(SERVICES, 0.0)
        self.requests = 0

    def add(self, port: int, signal: str, items: int) -> None:
        with self._lock:
            self._counts[port][signal] += items
            self._last[signal] = time.monotonic()
            self.requests += 1

    def snapshot(self) -> dict[str, Any]:
        """Counts per port and signal, plus ``last``: per signal, when (``time.monotonic``,
        the system-wide clock) the last items arrived."""
        with self._lock:
            counts: dict[str, Any] = {str(p): dict(c) for p, c in self._counts.items()}
            counts["requests"] = self.requests
            counts["last"] = dict(self._last)
            return counts


def _handler(counts: Counts, port: int, signal: str) -> Callable[[bytes, Any], bytes]:
    def export(body: bytes, context: Any) -> bytes:
        counts.add(port, signal, count_items(signal, body))
        return b""  # an empty Export*ServiceResponse: everything accepted

    return export


def serve_grpc(counts: Counts, port: int) -> grpc.Server:
    """A sync gRPC server counting what arrives on ``port``."""
    options = [("grpc.max_receive_message_length", 256 * 2**20), ("grpc.so_reuseport", 0)]
    server = grpc.server(ThreadPoolExecutor(max_workers=8), options=options)
    for signal, service in SERVICES.items():
        method = grpc.unary_unary_rpc_method_handler(_handler(counts, port, signal))
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, {"Export": method}),)
        )
    if server.add_insecure_port(f"127.0.0.1:{port}") != port:
        raise OSError(f"sink cannot listen on 127.0.0.1:{port}")
    server.start()
    return server


def _control_handler(counts: Counts) -> type[BaseHTTPRequestHandler]:
    class Control(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(counts.snapshot()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Control


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sink", description=__doc__)
    parser.add_argument("--ports", required=True, help="comma-separated OTLP/gRPC ports")
    parser.add_argument("--control", type=int, required=True, help="port of GET /counts")
    args = parser.parse_args(argv)
    ports = [int(p) for p in args.ports.split(",")]
    counts = Counts(ports)
    servers = [serve_grpc(counts, port) for port in ports]
    control = ThreadingHTTPServer(("127.0.0.1", args.control), _control_handler(counts))
    print("sink ready", flush=True)
    try:
        control.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        for server in servers:
            server.stop(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
