"""A downstream OTLP receiver for tests: gRPC and HTTP on 127.0.0.1, recording what arrives.

Both servers run in their own threads (a sync ``grpc.server`` and a ``ThreadingHTTPServer``),
so the sink works the same from sync and async tests. Everything recorded is guarded by a
lock; the accessors return copies. ``fail_next`` makes the next requests fail the way a real
backend under pressure would, so tests can check classification and retry timing.

How each request is checked and answered, like the Collector's OTLP receiver (an id of the
wrong length refuses the request whole), is in :mod:`tests.support.otlp_sink_handlers`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import grpc
from google.protobuf.duration_pb2 import Duration
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
from tests.support.http_server import ServerThread
from tests.support.otlp_sink_handlers import SinkHTTPServer, grpc_handlers

Transport = Literal["grpc", "http"]

_RESPONSES: dict[Signal, type[Any]] = {
    Signal.TRACES: ExportTraceServiceResponse,
    Signal.METRICS: ExportMetricsServiceResponse,
    Signal.LOGS: ExportLogsServiceResponse,
}


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
        self._served: ServerThread | None = None

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
        server.add_generic_rpc_handlers(grpc_handlers(self))
        port = server.add_insecure_port(f"127.0.0.1:{self.grpc_port}")
        if port == 0:
            raise OSError(f"sink: cannot bind gRPC port {self.grpc_port}")
        self.grpc_port = port
        server.start()
        self._grpc = server
        try:
            self._served = ServerThread(SinkHTTPServer(("127.0.0.1", self.http_port), self))
        except OSError:
            self.stop()
            raise
        self.http_port = self._served.port
        return self

    def stop(self) -> None:
        """Stop both servers, drop open connections and release the ports."""
        self._stopping.set()
        if self._served is not None:
            self._served.stop()
            self._served = None
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

    # --- called by the request handlers (from their threads) --------------------------------

    def take_failure(self, transport: Transport, signal: Signal) -> _Failure | None:
        """The next injected failure, if any, recorded as a refusal."""
        with self._lock:
            if not self._state.failures:
                return None
            self._state.refused.append(Refused(time.monotonic(), transport, signal))
            return self._state.failures.popleft()

    def refuse(self, transport: Transport, signal: Signal) -> None:
        """Record a request refused as invalid."""
        with self._lock:
            self._state.refused.append(Refused(time.monotonic(), transport, signal))

    def record(self, signal: Signal, transport: Transport, request: ExportRequest,
               headers: dict[str, str], at: float, body: bytes) -> None:  # fmt: skip
        """Record an accepted request (see :class:`Received`)."""
        with self._lock:
            self._state.received.append(Received(signal, transport, request, headers, at, body))

    def response(self, signal: Signal) -> Any:
        """The answer to an accepted request (with ``partial_success`` when it is set)."""
        response = _RESPONSES[signal]()
        if self.partial_success is not None:
            rejected, message = self.partial_success
            setattr(response.partial_success, f"rejected_{signal.item_name}", rejected)
            response.partial_success.error_message = message
        return response

    def pause(self) -> None:
        """Wait ``delay`` seconds (less if the sink stops meanwhile)."""
        if self.delay > 0:
            self._stopping.wait(self.delay)
