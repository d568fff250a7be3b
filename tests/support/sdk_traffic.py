"""Real OpenTelemetry SDK clients for end-to-end tests: traces (with exceptions) and logs
over OTLP/HTTP, flushed before returning."""

from __future__ import annotations

import logging
import time

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode


class ServiceClient:
    """One instrumented service: a tracer and a logger exporting to the gateway."""

    def __init__(self, endpoint: str, name: str, version: str = "1.0.0") -> None:
        resource = Resource.create({"service.name": name, "service.version": version})
        self.traces = TracerProvider(resource=resource)
        self.traces.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(f"{endpoint}/v1/traces"), max_queue_size=20000)
        )
        self.logs = LoggerProvider(resource=resource)
        self.logs.add_log_record_processor(
            BatchLogRecordProcessor(OTLPLogExporter(f"{endpoint}/v1/logs"))
        )
        self.tracer = self.traces.get_tracer("e2e.dashboard")
        self.logger = logging.getLogger(f"e2e.dashboard.{name}")
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        self.logger.addHandler(LoggingHandler(logger_provider=self.logs))

    def requests(self, count: int, *, failing: int = 0, route: str = "GET /shop",
                 seconds: float = 0.02) -> None:  # fmt: skip
        """``count`` SERVER spans, the first ``failing`` of them with status ERROR."""
        for i in range(count):
            start = time.time_ns()
            span = self.tracer.start_span(route, kind=SpanKind.SERVER, start_time=start)
            if i < failing:
                span.set_status(Status(StatusCode.ERROR, "boom"))
            span.end(end_time=start + int(seconds * 1e9))

    def checkout_trace(self, downstream: ServiceClient, line: str) -> str:
        """A trace across two services (SERVER -> CLIENT -> downstream SERVER -> INTERNAL)
        whose downstream span logs ``line`` and records a raised exception; its trace id."""
        server, client = SpanKind.SERVER, SpanKind.CLIENT
        with (
            self.tracer.start_as_current_span("POST /checkout", kind=server) as root,
            self.tracer.start_as_current_span("call payments", kind=client),
            downstream.tracer.start_as_current_span("POST /charge", kind=server) as charge,
        ):
            with downstream.tracer.start_as_current_span("card.authorize"):
                downstream.logger.error(line)
            try:
                raise_declined()
            except ValueError as exc:
                charge.record_exception(exc)
                charge.set_status(Status(StatusCode.ERROR, "declined"))
        return f"{root.get_span_context().trace_id:032x}"

    def flush(self) -> None:
        """Send everything now."""
        self.traces.force_flush()
        self.logs.force_flush()

    def close(self) -> None:
        """Flush and stop the exporters."""
        self.flush()
        self.traces.shutdown()
        self.logs.shutdown()


def raise_declined() -> None:
    """Raises the exception the e2e error group is made of."""
    raise ValueError("card declined by issuer")


def current_trace_id() -> str:
    """The trace id of the current span (hex)."""
    return f"{trace.get_current_span().get_span_context().trace_id:032x}"
