"""Large requests split on the wire: the pieces hold exactly the items, in order, each small."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.errors import TooLargeError
from gateway.otlp.batch import ExportRequest, Signal, count_items
from gateway.otlp.split import split_request
from gateway.otlp.wire import WireError
from tests.support.hostile import empty_groups, tiny_spans

# resources -> scopes -> item sizes (bytes of padding in each item)
Shape = list[list[list[int]]]
shapes = st.lists(
    st.lists(st.lists(st.integers(0, 300), max_size=12), max_size=4), min_size=1, max_size=4
)


def build(signal: Signal, shape: Shape) -> ExportRequest:
    """A request of ``signal`` with the given shape; every item is distinguishable."""
    n = 0
    if signal is Signal.TRACES:
        traces = ExportTraceServiceRequest()
        for r, scopes in enumerate(shape):
            rs = traces.resource_spans.add()
            rs.resource.attributes.add(key="service.name").value.string_value = f"svc-{r}"
            for s, sizes in enumerate(scopes):
                ss = rs.scope_spans.add()
                ss.scope.name = f"scope-{s}"
                for size in sizes:
                    n += 1
                    ss.spans.add(
                        trace_id=os.urandom(16), span_id=os.urandom(8), name=f"{n}:" + "x" * size
                    )
        return traces
    if signal is Signal.LOGS:
        logs = ExportLogsServiceRequest()
        for scopes in shape:
            rl = logs.resource_logs.add()
            for sizes in scopes:
                sl = rl.scope_logs.add()
                for size in sizes:
                    n += 1
                    sl.log_records.add().body.string_value = f"{n}:" + "x" * size
        return logs
    metrics = ExportMetricsServiceRequest()
    for scopes in shape:
        rm = metrics.resource_metrics.add()
        for sizes in scopes:
            sm = rm.scope_metrics.add()
            metric = sm.metrics.add(name=f"m{len(sm.metrics)}", unit="1")
            metric.sum.aggregation_temporality = 2  # type: ignore[assignment]
            metric.sum.is_monotonic = True
            for size in sizes:
                n += 1
                point = metric.sum.data_points.add(as_int=n)
                point.attributes.add(key="pad").value.string_value = "x" * size
    return metrics


def items(signal: Signal, request: ExportRequest) -> list[bytes]:
    """Every item with the context that makes it what it is (resource, scope, metric header),
    encoded, in order."""
    out = []
    if signal is Signal.METRICS:
        assert isinstance(request, ExportMetricsServiceRequest)
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    head = (rm.resource, sm.scope, m.name, m.sum.aggregation_temporality)
                    for point in m.sum.data_points:
                        out.append(repr(head).encode() + point.SerializeToString())
        return out
    groups: Any = (
        request.resource_spans  # type: ignore[union-attr]
        if signal is Signal.TRACES
        else request.resource_logs  # type: ignore[union-attr]
    )
    for group in groups:
        scopes = group.scope_spans if signal is Signal.TRACES else group.scope_logs
        for scope in scopes:
            children = scope.spans if signal is Signal.TRACES else scope.log_records
            for child in children:
                context = group.resource.SerializeToString() + scope.scope.SerializeToString()
                out.append(context + child.SerializeToString())
    return out


@pytest.mark.parametrize("signal", list(Signal))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=shapes, limit=st.integers(40, 4000))
def test_pieces_hold_exactly_the_items_in_order(signal: Signal, shape: Shape, limit: int) -> None:
    request = build(signal, shape)
    body = request.SerializeToString()
    pieces = split_request(signal, body, limit)
    decoded = [signal.request_type.FromString(piece) for piece in pieces]
    assert [i for piece in decoded for i in items(signal, piece)] == items(signal, request)
    for piece, message in zip(pieces, decoded, strict=True):
        # Only a piece holding a single item (which cannot be cut) may exceed the limit.
        assert len(piece) <= limit or count_items(signal, message) <= 1
    if len(body) <= limit:
        assert pieces == [body]


def test_a_large_request_becomes_pieces_of_about_the_limit() -> None:
    request = build(Signal.TRACES, [[[100] * 5000]])  # one resource, one scope, 5000 spans
    body = request.SerializeToString()
    pieces = split_request(Signal.TRACES, body, 64 * 1024)
    assert len(pieces) == len(body) // (64 * 1024) + 1
    assert all(len(piece) <= 64 * 1024 for piece in pieces)
    assert sum(count_items(Signal.TRACES, Signal.TRACES.request_type.FromString(p))
               for p in pieces) == 5000  # fmt: skip


def test_empty_groups_cost_pieces_not_one_giant_decode() -> None:
    body = empty_groups(200_000)
    pieces = split_request(Signal.TRACES, body, 64 * 1024)
    assert len(pieces) == 7 and all(len(piece) <= 64 * 1024 for piece in pieces)


def test_walking_is_bounded_by_the_entry_budget() -> None:
    """A 64 MiB body of two-byte groups is 32 million entries: refused once the budget is
    spent, instead of a minute of CPU (issue 9, huge counts of tiny items)."""
    split_request(Signal.TRACES, empty_groups(1000), 100, max_entries=1000)
    with pytest.raises(TooLargeError, match="more than 1,000 groups and items"):
        split_request(Signal.TRACES, empty_groups(1001), 100, max_entries=1000)
    one_scope = tiny_spans(1001)  # the budget counts the items of a group that is cut too
    with pytest.raises(TooLargeError):
        split_request(Signal.TRACES, one_scope, 1000, max_entries=1000)


@pytest.mark.parametrize("cut", [1, 3, 100])
def test_malformed_framing_is_a_wire_error(cut: int) -> None:
    body = build(Signal.LOGS, [[[500] * 40]]).SerializeToString()
    with pytest.raises(WireError):
        split_request(Signal.LOGS, body[:-cut], 1000)
