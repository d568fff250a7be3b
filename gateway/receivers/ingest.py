"""The ingest path shared by the OTLP receivers: validate, count, route, answer.

Transport-specific code (HTTP bodies, gRPC contexts) stays in the receivers; what happens to a
decoded request, and which response or refusal the client gets, is decided here once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from gateway.batch import Batch, ExportRequest, Signal
from gateway.errors import BadRequestError, NoPipelineError, RefusedError
from gateway.observers import Observer, notify
from gateway.pipeline import Router
from gateway.selfmetrics import GatewayMetrics
from gateway.validation import validate

ExportResponse = (
    ExportTraceServiceResponse | ExportMetricsServiceResponse | ExportLogsServiceResponse
)


def decode_protobuf(signal: Signal, body: bytes) -> ExportRequest:
    """Decode an OTLP protobuf request body, or raise :class:`BadRequestError`."""
    try:
        return signal.request_type.FromString(body)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise BadRequestError(f"cannot decode OTLP {signal} protobuf: {exc}") from exc


def build_response(signal: Signal, rejected: int, message: str) -> ExportResponse:
    """The Export*ServiceResponse; ``partial_success`` stays unset when nothing was rejected."""
    if signal is Signal.TRACES:
        traces = ExportTraceServiceResponse()
        if rejected or message:
            traces.partial_success.rejected_spans = rejected
            traces.partial_success.error_message = message
        return traces
    if signal is Signal.METRICS:
        metrics = ExportMetricsServiceResponse()
        if rejected or message:
            metrics.partial_success.rejected_data_points = rejected
            metrics.partial_success.error_message = message
        return metrics
    logs = ExportLogsServiceResponse()
    if rejected or message:
        logs.partial_success.rejected_log_records = rejected
        logs.partial_success.error_message = message
    return logs


class Ingest:
    """What one receiver does with decoded requests, for all three signals."""

    def __init__(
        self,
        transport: str,
        routers: Mapping[Signal, Router],
        metrics: GatewayMetrics,
        observers: Sequence[Observer] = (),
    ) -> None:
        self.transport = transport
        self.routers = dict(routers)
        self.metrics = metrics
        self.observers = observers  # shared with the gateway: observers added later count

    def has_pipeline(self, signal: Signal) -> bool:
        return signal in self.routers

    def refuse(self, signal: Signal, reason: str, items: int | None = None) -> None:
        """Count a refusal: its items when known (zero counts nothing), else the request."""
        if items is None:
            counter = self.metrics.receiver_requests_refused
            counter.labels(signal.value, self.transport, reason).inc()
        elif items:
            counter = self.metrics.receiver_refused
            counter.labels(signal.value, self.transport, reason).inc(items)

    async def export(
        self, signal: Signal, request: ExportRequest, encoded: bytes | None
    ) -> ExportResponse:
        """Validate and route one request. Raises :class:`RefusedError` to refuse it whole."""
        router = self.routers.get(signal)
        if router is None:
            error = NoPipelineError(f"no {signal} pipeline uses this receiver")
            self.refuse(signal, error.reason)
            raise error
        rejection = validate(signal, request)
        # Keep the received bytes only if validation removed nothing: then they still match.
        batch = Batch.from_request(signal, request)
        if not rejection.changed:
            batch.encoded = encoded
        self.refuse(signal, "invalid", rejection.count)
        if batch.items:
            try:
                await router.consume(batch)
            except RefusedError as exc:
                self.refuse(signal, exc.reason, batch.items)
                raise
            self.metrics.receiver_accepted.labels(signal.value, self.transport).inc(batch.items)
            notify(self.observers, batch)
        return build_response(signal, rejection.count, rejection.message)
