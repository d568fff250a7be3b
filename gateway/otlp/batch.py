"""The one batch type that flows through the whole pipeline.

A batch is the OTLP ``Export*ServiceRequest`` message itself (decoded once, never converted
to SDK objects), the signal it belongs to and how many items (spans, data points, log
records) it holds. When the batch arrived as protobuf and nothing has changed it since, the
received bytes are kept so that forwarding exporters can send them without re-encoding.
``nbytes`` is what the batch counts against byte-sized queues: the size it arrived with.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

ExportRequest = ExportTraceServiceRequest | ExportMetricsServiceRequest | ExportLogsServiceRequest


class Signal(enum.StrEnum):
    """The three OTLP signals; the value is the name used in config, paths and metrics."""

    TRACES = "traces"
    METRICS = "metrics"
    LOGS = "logs"

    @property
    def request_type(self) -> type[ExportRequest]:
        return _REQUEST_TYPES[self]

    @property
    def item_name(self) -> str:
        """What OTLP calls one item of this signal (used in partial_success fields)."""
        return _ITEM_NAMES[self]


_REQUEST_TYPES: dict[Signal, type[ExportRequest]] = {
    Signal.TRACES: ExportTraceServiceRequest,
    Signal.METRICS: ExportMetricsServiceRequest,
    Signal.LOGS: ExportLogsServiceRequest,
}
_ITEM_NAMES = {Signal.TRACES: "spans", Signal.METRICS: "data_points", Signal.LOGS: "log_records"}

_DATA_POINT_KINDS = ("gauge", "sum", "histogram", "exponential_histogram", "summary")


def census(signal: Signal, request: ExportRequest, limit: int) -> int | None:
    """The items of ``request`` when it has at most ``limit`` entries (groups, metrics and
    items together), else None; stops counting as soon as the limit is passed, so a request
    of millions of entries costs no loop over them."""
    groups: Any = (
        request.resource_spans  # type: ignore[union-attr]
        if signal is Signal.TRACES
        else request.resource_logs  # type: ignore[union-attr]
        if signal is Signal.LOGS
        else request.resource_metrics  # type: ignore[union-attr]
    )
    entries = len(groups)
    if entries > limit:
        return None
    if signal is Signal.METRICS:
        metrics = [m for rm in groups for sm in rm.scope_metrics for m in sm.metrics]
        entries += len(metrics)
        if entries > limit:
            return None
        items = 0
        for metric in metrics:
            kind = metric.WhichOneof("data")
            if kind in _DATA_POINT_KINDS:
                items += len(getattr(metric, kind).data_points)
        return items if entries + items <= limit else None
    scopes = [
        scope
        for group in groups
        for scope in (group.scope_spans if signal is Signal.TRACES else group.scope_logs)
    ]
    entries += len(scopes)
    if entries > limit:
        return None
    if signal is Signal.TRACES:
        items = sum(len(scope.spans) for scope in scopes)
    else:
        items = sum(len(scope.log_records) for scope in scopes)
    return items if entries + items <= limit else None


def count_items(signal: Signal, request: ExportRequest) -> int:
    """Number of spans, metric data points or log records in ``request``."""
    if signal is Signal.TRACES:
        assert isinstance(request, ExportTraceServiceRequest)
        return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
    if signal is Signal.LOGS:
        assert isinstance(request, ExportLogsServiceRequest)
        return sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)
    assert isinstance(request, ExportMetricsServiceRequest)
    total = 0
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                if kind in _DATA_POINT_KINDS:
                    total += len(getattr(metric, kind).data_points)
    return total


def resources_of(batch: Batch) -> Iterable[Resource]:
    """Every resource in the batch (one per ResourceSpans/Metrics/Logs)."""
    request = batch.request
    if batch.signal is Signal.TRACES:
        return (rs.resource for rs in request.resource_spans)  # type: ignore[union-attr]
    if batch.signal is Signal.METRICS:
        return (rm.resource for rm in request.resource_metrics)  # type: ignore[union-attr]
    return (rl.resource for rl in request.resource_logs)  # type: ignore[union-attr]


class Batch:
    """One OTLP export request on its way through the gateway.

    Treat ``request`` as immutable once the batch leaves the processors: every exporter of a
    pipeline shares the same object. A processor that changes it calls :meth:`mark_modified`.
    Identity semantics (no ``__eq__``): queues track batches in sets, and an exporter may keep
    state for a batch it is retrying in a ``WeakKeyDictionary`` (freed with the batch).
    """

    __slots__ = ("__weakref__", "_request", "encoded", "items", "nbytes", "signal")

    def __init__(
        self,
        signal: Signal,
        request: ExportRequest | None,
        items: int,
        encoded: bytes | None = None,
        nbytes: int | None = None,
    ) -> None:
        if request is None and encoded is None:
            raise ValueError("a batch needs its request or its encoded bytes")
        self.signal = signal
        self._request = request
        self.items = items
        self.encoded = encoded
        if nbytes is None:
            nbytes = len(encoded) if encoded is not None else self.request.ByteSize()
        self.nbytes = nbytes  # upb computes ByteSize without encoding

    def __repr__(self) -> str:
        return f"Batch({self.signal.value}, items={self.items})"

    @classmethod
    def from_request(
        cls, signal: Signal, request: ExportRequest, nbytes: int | None = None
    ) -> Batch:
        """A batch of ``request``; ``nbytes`` is the size it arrived with, if known."""
        return cls(signal, request, count_items(signal, request), nbytes=nbytes)

    @classmethod
    def concatenate(cls, batches: Sequence[Batch]) -> Batch:
        """One batch with the items of ``batches`` (all of one signal), built from their bytes.

        In protobuf, the concatenated encodings of two messages of one type are the encoding of
        their merge, and a merge appends repeated fields: the joined ``Export*ServiceRequest``
        bytes are exactly the request holding every ``resource_*`` entry of each. So merging
        costs one ``bytes.join``; the request is decoded only if somebody reads it.
        """
        if len(batches) == 1:
            return batches[0]
        signal = batches[0].signal
        if any(b.signal is not signal for b in batches):
            raise ValueError("cannot concatenate batches of different signals")
        encoded = b"".join(b.serialized() for b in batches)
        return cls(signal, None, sum(b.items for b in batches), encoded, len(encoded))

    def bytes_only(self) -> Batch:
        """This batch as its encoded bytes alone, for a queue whose exporter sends only bytes:
        the decoded request (several times the size of its encoding) is then freed once the
        pipeline is done with it, instead of waiting in the queue."""
        if self._request is None:
            return self
        encoded = self.serialized()
        return Batch(self.signal, None, self.items, encoded, len(encoded))

    @property
    def request(self) -> ExportRequest:
        """The decoded request (decoded from ``encoded`` on first use when built from bytes)."""
        if self._request is None:
            assert self.encoded is not None  # guaranteed by __init__
            request = self.signal.request_type()
            request.ParseFromString(self.encoded)
            self._request = request
        return self._request

    def serialized(self) -> bytes:
        """The protobuf encoding of ``request``; the received bytes when still unmodified."""
        if self.encoded is None:
            self.encoded = self.request.SerializeToString()
        return self.encoded

    def mark_modified(self) -> None:
        """Forget cached bytes and recount items after ``request`` was changed in place."""
        self.encoded = None
        self.items = count_items(self.signal, self.request)

    def copy(self) -> Batch:
        """A deep copy, for a consumer that must change the request without others seeing it."""
        clone = self.signal.request_type()
        clone.CopyFrom(self.request)  # type: ignore[arg-type]  # same type: request_type
        return Batch(self.signal, clone, self.items, self.encoded, self.nbytes)
