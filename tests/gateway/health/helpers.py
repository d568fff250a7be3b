"""Shared by the health tests: a batch of spans with given durations and errors."""

from __future__ import annotations

from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from gateway.otlp.batch import Batch, Signal
from tests.factories import attr


def spans_batch(
    service: str,
    durations: list[float],
    errors: set[int] | frozenset[int] = frozenset(),
    kind: Span.SpanKind.ValueType = Span.SPAN_KIND_SERVER,
) -> Batch:
    """One span per duration (seconds); the indexes in ``errors`` have status ERROR."""
    request = Signal.TRACES.request_type()
    rs = request.resource_spans.add()  # type: ignore[union-attr]
    rs.resource.attributes.append(attr("service.name", service))
    ss = rs.scope_spans.add()
    start = 1_700_000_000_000_000_000
    for i, seconds in enumerate(durations):
        code = Status.STATUS_CODE_ERROR if i in errors else Status.STATUS_CODE_OK
        ss.spans.append(
            Span(
                trace_id=bytes(16 - 1) + b"\1",
                span_id=(i + 1).to_bytes(8, "big"),
                name="GET /x",
                kind=kind,
                start_time_unix_nano=start,
                end_time_unix_nano=start + round(seconds * 1e9),
                status=Status(code=code),
            )
        )
    return Batch.from_request(Signal.TRACES, request)


class Clock:
    """A clock the test moves (``now``, epoch seconds)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
