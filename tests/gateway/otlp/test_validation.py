"""Per-item validation: invalid items are removed and counted, valid ones stay untouched."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.otlp.batch import Signal, count_items
from gateway.otlp.validation import validate
from tests.factories import logs_request, metrics_request, traces_request


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("trace_id", b"\x01" * 8, "trace_id"),
        ("trace_id", b"", "trace_id"),
        ("trace_id", bytes(16), "trace_id"),
        ("span_id", b"\x01" * 16, "span_id"),
        ("span_id", bytes(8), "span_id"),
        ("parent_span_id", b"\x01" * 3, "parent_span_id"),
    ],
)
def test_invalid_span_ids_are_rejected(field, value, problem):
    request = traces_request(4)
    spans = request.resource_spans[0].scope_spans[0].spans
    setattr(spans[2], field, value)
    keep = [spans[0].name, spans[1].name, spans[3].name]
    rejection = validate(Signal.TRACES, request)
    assert rejection.count == 1
    assert problem in rejection.message
    assert [s.name for s in request.resource_spans[0].scope_spans[0].spans] == keep


def test_bad_link_is_rejected_and_valid_request_untouched():
    request = traces_request(3)
    before = request.SerializeToString()
    assert validate(Signal.TRACES, request).count == 0
    assert request.SerializeToString() == before
    request.resource_spans[0].scope_spans[0].spans[0].links.add(trace_id=b"x", span_id=b"y")
    assert validate(Signal.TRACES, request).count == 1
    assert count_items(Signal.TRACES, request) == 2


def test_log_ids_may_be_empty_but_not_wrong_length():
    request = logs_request(3)
    records = request.resource_logs[0].scope_logs[0].log_records
    records[0].trace_id = b""
    records[0].span_id = b""
    records[1].trace_id = b"\x01" * 15
    rejection = validate(Signal.LOGS, request)
    assert rejection.count == 1
    assert "log record trace_id" in rejection.message
    assert count_items(Signal.LOGS, request) == 2


def test_metric_without_name_rejects_its_points():
    request = metrics_request(points=3)
    request.resource_metrics[0].scope_metrics[0].metrics[0].name = ""
    rejection = validate(Signal.METRICS, request)
    assert rejection.count == 3
    assert count_items(Signal.METRICS, request) == 0


def test_message_lists_each_reason_once():
    request = traces_request(10)
    for span in request.resource_spans[0].scope_spans[0].spans:
        span.trace_id = b"short"
    rejection = validate(Signal.TRACES, request)
    assert rejection.count == 10
    assert rejection.message.count("trace_id must be") == 1


def test_bad_exemplar_is_removed_with_a_warning_and_the_point_kept():
    request = metrics_request(points=1)
    point = request.resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points[0]
    point.exemplars.add(as_double=1.0, trace_id=b"\xff", span_id=b"\x01" * 8)
    point.exemplars.add(as_double=2.0, trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
    rejection = validate(Signal.METRICS, request)
    assert rejection.count == 0 and rejection.changed
    assert "exemplars" in rejection.message
    assert [e.as_double for e in point.exemplars] == [2.0]
    assert count_items(Signal.METRICS, request) == 1


@pytest.mark.parametrize("signal", list(Signal))
def test_groups_without_items_are_removed_and_the_items_kept(signal):
    builders: dict[Signal, Any] = {
        Signal.TRACES: traces_request, Signal.LOGS: logs_request, Signal.METRICS: metrics_request,
    }  # fmt: skip
    request = builders[signal](3)
    kind = "spans" if signal is Signal.TRACES else signal.value
    groups = getattr(request, f"resource_{kind}")
    scopes = f"scope_{kind}"
    before = count_items(signal, request)
    groups.add()  # an empty resource group
    getattr(groups[0], scopes).add()  # an empty scope group in the first resource
    rejection = validate(signal, request)
    assert rejection.count == 0 and rejection.changed and not rejection.message
    assert len(groups) == 1 and len(getattr(groups[0], scopes)) == 1
    assert count_items(signal, request) == before


def test_removing_many_invalid_items_keeps_exactly_the_valid_ones_in_order():
    request = traces_request(20_000)
    spans = request.resource_spans[0].scope_spans[0].spans
    for span in spans[::2]:  # every other span: the case where deleting one by one is O(n^2)
        span.trace_id = b"bad"
    keep = [s.name for s in spans[1::2]]
    assert validate(Signal.TRACES, request).count == 10_000
    assert [s.name for s in request.resource_spans[0].scope_spans[0].spans] == keep
