"""Probes that keep asking every listener of a running gateway for an answer, and record the
slowest answer of each: liveness, an OTLP/HTTP export and an OTLP/gRPC export."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import grpc
import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.otlp.batch import Signal
from tests.support.gateway_process import GatewayProcess
from tests.support.otlp_samples import sample_request

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
PROTOBUF = {"Content-Type": "application/x-protobuf"}


def fresh_spans(n: int) -> ExportTraceServiceRequest:
    """``n`` spans with ids no other request of the run uses."""
    request = sample_request(Signal.TRACES, n)
    assert isinstance(request, ExportTraceServiceRequest)
    for span in request.resource_spans[0].scope_spans[0].spans:
        span.span_id = os.urandom(8)
    return request


def span_ids(request: ExportTraceServiceRequest) -> set[bytes]:
    return {s.span_id for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans}


class Probes:
    """Liveness, an OTLP/HTTP export and an OTLP/gRPC export, each repeated while hostile
    requests are handled; records the slowest answer of each."""

    def __init__(self, gateway: GatewayProcess) -> None:
        self.gateway = gateway
        self.slowest: dict[str, float] = {"live": 0.0, "http": 0.0, "grpc": 0.0}
        self.errors: list[str] = []
        self.sent: set[bytes] = set()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(name, probe), daemon=True)
            for name, probe in (("live", self._live), ("http", self._http), ("grpc", self._grpc))
        ]
        self._channel = grpc.insecure_channel(gateway.grpc_endpoint)

    def _live(self) -> None:
        url = f"{self.gateway.admin_url}/health/live"
        assert httpx.get(url, timeout=10).status_code == 200

    def _http(self) -> None:
        request = fresh_spans(2)
        url = f"{self.gateway.http_endpoint}/v1/traces"
        body = request.SerializeToString()
        response = httpx.post(url, content=body, headers=PROTOBUF, timeout=10)
        assert response.status_code == 200, response.status_code
        self.sent |= span_ids(request)

    def _grpc(self) -> None:
        request = fresh_spans(2)
        call = self._channel.unary_unary(EXPORT)
        call(request.SerializeToString(), timeout=10)
        self.sent |= span_ids(request)

    def _loop(self, name: str, probe: Callable[[], None]) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                probe()
            except Exception as exc:  # recorded; the test fails on it
                self.errors.append(f"{name}: {exc!r}")
            self.slowest[name] = max(self.slowest[name], time.monotonic() - started)
            self._stop.wait(0.05)

    def __enter__(self) -> Probes:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)
        self._channel.close()
