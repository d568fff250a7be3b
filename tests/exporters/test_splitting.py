"""Cutting a refused batch into pieces: every item once, in order, with its own resource."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporters.splitting import split_batch
from gateway.otlp.batch import Batch, Signal, count_items
from tests.support.otlp_samples import sample_request


def _leaves(signal: Signal, request: Any) -> list[tuple[bytes, bytes, bytes]]:
    """(resource, scope, item) encodings of every item, in order; for metrics the item is the
    metric description plus one data point."""
    out = []
    groups = {
        Signal.TRACES: ("resource_spans", "scope_spans"),
        Signal.LOGS: ("resource_logs", "scope_logs"),
        Signal.METRICS: ("resource_metrics", "scope_metrics"),
    }[signal]
    for resource in getattr(request, groups[0]):
        for scope in getattr(resource, groups[1]):
            head = (resource.resource.SerializeToString(), scope.scope.SerializeToString())
            if signal is Signal.TRACES:
                out += [(*head, span.SerializeToString()) for span in scope.spans]
            elif signal is Signal.LOGS:
                out += [(*head, log.SerializeToString()) for log in scope.log_records]
            else:
                for metric in scope.metrics:
                    kind = metric.WhichOneof("data")
                    for point in getattr(metric, kind).data_points:
                        out.append((*head, metric.name.encode() + point.SerializeToString()))
    return out


def _request(signal: Signal, groups: list[int]) -> Any:
    """A request with one resource per entry of ``groups``, holding that many items."""
    request = signal.request_type()
    for index, items in enumerate(groups):
        piece = sample_request(signal, items, service=f"svc-{index}")
        request.MergeFrom(piece)  # type: ignore[arg-type]
    return request


@pytest.mark.parametrize("signal", list(Signal))
@settings(max_examples=40, deadline=None)
@given(groups=st.lists(st.integers(0, 7), min_size=1, max_size=5), parts=st.integers(1, 12))
def test_pieces_hold_every_item_once_in_order(
    signal: Signal, groups: list[int], parts: int
) -> None:
    request = _request(signal, groups)
    batch = Batch.from_request(signal, request)
    if batch.items == 0:
        return
    pieces = split_batch(batch, parts)
    assert len(pieces) == min(parts, batch.items)
    assert [count_items(signal, p.request) for p in pieces] == [p.items for p in pieces]
    assert max(p.items for p in pieces) - min(p.items for p in pieces) <= 1
    joined = [leaf for piece in pieces for leaf in _leaves(signal, piece.request)]
    assert joined == _leaves(signal, request)


def test_a_piece_keeps_the_metric_description_and_temporality() -> None:
    request = sample_request(Signal.METRICS, 5)
    metric = request.resource_metrics[0].scope_metrics[0].metrics[1]  # type: ignore[union-attr]
    metric.sum.data_points.add().CopyFrom(metric.sum.data_points[0])
    batch = Batch.from_request(Signal.METRICS, request)
    pieces = split_batch(batch, 3)  # [m0, m1], [m1, m2], [m3, m4]
    copies = [
        m
        for piece in pieces
        for m in piece.request.resource_metrics[0].scope_metrics[0].metrics  # type: ignore[union-attr]
        if m.name == metric.name
    ]
    assert len(copies) == 2  # its two points went to two pieces
    for copy in copies:
        assert copy.unit == metric.unit and copy.description == metric.description
        assert copy.sum.is_monotonic and copy.sum.aggregation_temporality == 2
        assert len(copy.sum.data_points) == 1


def test_one_item_is_not_split() -> None:
    batch = Batch.from_request(Signal.TRACES, sample_request(Signal.TRACES, 1))
    assert split_batch(batch, 4) == [batch]
