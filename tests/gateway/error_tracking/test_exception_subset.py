"""What a worker sends error tracking in the supervisor (gateway.workers): only the spans and
log records that hold an exception, and error tracking finds exactly the same in them."""

from __future__ import annotations

from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from gateway.error_tracking.capture import exception_subset, occurrences
from gateway.otlp.batch import Batch
from tests.gateway.error_tracking.batches import (
    log_with_exception,
    logs,
    resource,
    span_with_exception,
    traces,
)


def _plain_span(i: int) -> Span:
    return Span(trace_id=bytes(15) + b"\1", span_id=i.to_bytes(8, "big"), name=f"GET /{i}")


def _seen(batch: Batch) -> list[tuple[object, ...]]:
    now = 1_800_000_000.0
    return [
        (o.type, o.message, o.stacktrace, o.time, o.trace_id, o.span_id, o.origin, o.source,
         list(o.context), list(o.own))
        for o in occurrences(batch, now)
    ]  # fmt: skip


def _same(a: Batch, b: Batch) -> None:
    found = _seen(a)
    assert found and found == _seen(b)


def test_spans_with_an_exception_event_are_kept_with_their_resource_and_scope():
    full = traces(
        _plain_span(1),
        span_with_exception("KeyError", "sku"),
        _plain_span(2),
        span_with_exception(),
        res=resource("shop", "2.0.0", **{"deployment.environment": "prod"}),
    )
    full.request.resource_spans[0].scope_spans[0].scope.name = "shop.api"  # type: ignore[union-attr]
    full.mark_modified()
    subset = exception_subset(full)
    assert subset is not None and subset.items == 2
    kept = subset.request.resource_spans[0]  # type: ignore[union-attr]
    assert kept.resource == full.request.resource_spans[0].resource  # type: ignore[union-attr]
    assert kept.scope_spans[0].scope.name == "shop.api"
    _same(full, subset)


def test_log_records_with_exception_attributes_are_kept():
    full = logs(LogRecord(), log_with_exception("OSError", "disk"), LogRecord())
    subset = exception_subset(full)
    assert subset is not None and subset.items == 1
    _same(full, subset)


def test_nothing_without_an_exception():
    assert exception_subset(traces(_plain_span(1), _plain_span(2))) is None
    assert exception_subset(logs(LogRecord())) is None
