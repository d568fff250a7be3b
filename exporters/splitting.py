"""Cutting a batch into smaller batches of whole items, for a backend that refused it, or
taking the items a backend asked for again (:func:`select_items`).

The pieces hold consecutive items (spans, data points, log records) in their original order,
as evenly as possible; each repeats the resource and scope (and, for metrics, the metric
description) its items had, so every piece is a valid request on its own and the items of
all pieces together are exactly those of the batch. Groups without items are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from gateway.otlp.batch import Batch, Signal

_GROUP_FIELDS = {
    Signal.TRACES: ("resource_spans", "scope_spans"),
    Signal.METRICS: ("resource_metrics", "scope_metrics"),
    Signal.LOGS: ("resource_logs", "scope_logs"),
}
_ITEM_FIELDS = {Signal.TRACES: "spans", Signal.LOGS: "log_records"}
_POINT_KINDS = ("gauge", "sum", "histogram", "exponential_histogram", "summary")

# The source messages an item run hangs from, outermost first.
Chain = tuple[Any, ...]


def split_batch(batch: Batch, parts: int) -> list[Batch]:
    """``batch`` as ``parts`` batches (at most one per item) of consecutive items."""
    parts = max(1, min(parts, batch.items))
    if parts == 1:
        return [batch]
    signal = batch.signal
    quotas = [batch.items // parts + (i < batch.items % parts) for i in range(parts)]
    requests = [signal.request_type()]
    made: dict[int, tuple[Any, Any]] = {}  # id(source) -> (source, its copy in this piece)
    room = quotas[0]
    for chain, items in _runs(signal, batch.request):
        start = 0
        while start < len(items):
            if room == 0:
                requests.append(signal.request_type())
                made = {}
                room = quotas[len(requests) - 1]
            take = min(room, len(items) - start)
            _container(signal, requests[-1], chain, made).extend(items[start : start + take])
            start += take
            room -= take
    return [Batch(signal, request, items) for request, items in zip(requests, quotas, strict=True)]


def select_items(batch: Batch, positions: Iterable[int]) -> Batch:
    """The items of ``batch`` at ``positions`` (0-based, counted in request order) as one
    batch, in their original order and under their own resources and scopes."""
    if not isinstance(positions, set | frozenset):
        positions = frozenset(positions)
    signal = batch.signal
    request = signal.request_type()
    made: dict[int, tuple[Any, Any]] = {}
    offset = taken = 0
    for chain, items in _runs(signal, batch.request):
        chosen = [item for i, item in enumerate(items, offset) if i in positions]
        if chosen:
            _container(signal, request, chain, made).extend(chosen)
            taken += len(chosen)
        offset += len(items)
    return Batch(signal, request, taken)


def _runs(signal: Signal, request: Any) -> Iterator[tuple[Chain, Sequence[Any]]]:
    """Every repeated field of items with the messages it hangs from."""
    resources, scopes = _GROUP_FIELDS[signal]
    for resource in getattr(request, resources):
        for scope in getattr(resource, scopes):
            if signal is not Signal.METRICS:
                yield (resource, scope), getattr(scope, _ITEM_FIELDS[signal])
                continue
            for metric in scope.metrics:
                kind = metric.WhichOneof("data")
                if kind in _POINT_KINDS:
                    yield (resource, scope, metric), getattr(metric, kind).data_points


def _container(signal: Signal, request: Any, chain: Chain, made: dict[int, tuple[Any, Any]]) -> Any:
    """The repeated field of ``request`` that takes items of ``chain``, made on first use."""
    resources, scopes = _GROUP_FIELDS[signal]
    resource, scope = chain[0], chain[1]
    copy = _made(made, resource)
    if copy is None:
        copy = _remember(made, resource, getattr(request, resources).add())
        copy.resource.CopyFrom(resource.resource)
        copy.schema_url = resource.schema_url
    parent, copy = copy, _made(made, scope)
    if copy is None:
        copy = _remember(made, scope, getattr(parent, scopes).add())
        copy.scope.CopyFrom(scope.scope)
        copy.schema_url = scope.schema_url
    if signal is not Signal.METRICS:
        return getattr(copy, _ITEM_FIELDS[signal])
    metric = chain[2]
    kind = metric.WhichOneof("data")
    parent, copy = copy, _made(made, metric)
    if copy is None:
        copy = _remember(made, metric, parent.metrics.add())
        copy.CopyFrom(metric)
        getattr(copy, kind).ClearField("data_points")
    return getattr(copy, kind).data_points


def _made(made: dict[int, tuple[Any, Any]], source: Any) -> Any:
    """The copy of ``source`` in the current piece (ids are checked: a freed message's id can
    be reused by another)."""
    entry = made.get(id(source))
    return entry[1] if entry is not None and entry[0] is source else None


def _remember(made: dict[int, tuple[Any, Any]], source: Any, copy: Any) -> Any:
    made[id(source)] = (source, copy)
    return copy
