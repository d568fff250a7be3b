"""Splitting a large encoded OTLP request into smaller requests with the same items.

A request of tens of MiB decoded in one go holds the GIL (upb decodes in C) and then the event
loop (per-item processing) for seconds, and a request of millions of empty messages expands
thirty-fold in memory when decoded. Large requests are therefore cut on the wire into pieces of
at most :data:`PIECE_BYTES` (so at most ~32,000 messages each), each an ``Export*ServiceRequest``
of its own, decoded and processed one after another.

The cut follows the nesting of the three requests: resource groups, then scope groups, then
items (spans, log records, metrics, then a metric's data points). A group that does not fit in
a piece is split into several copies of itself, each with its own header (resource, scope,
metric name and type) and a share of its children; an item bigger than a piece stays whole.
Only the groups that are too large are walked, so a request of a few large resource groups
costs a handful of tag reads per group. The pieces hold exactly the original items, in order.
Walking costs about a microsecond per entry, so a request that needs more than
:data:`MAX_ENTRIES` entries walked is refused (413) rather than costing a minute of CPU.
"""

from __future__ import annotations

from gateway.errors import TooLargeError
from gateway.otlp.batch import Signal
from gateway.otlp.wire import encode_varint, fields

PIECE_BYTES = 64 * 1024
"""The most bytes of one piece (unless it is a single item)."""
MAX_ENTRIES = 1_000_000
"""The most entries (groups and items) the split of one request may walk."""

_LEN = 2
_GROUPS = frozenset({1})  # Export*ServiceRequest.resource_* ; a data kind's data_points
_SCOPES = frozenset({2})  # Resource*.scope_* ; Scope*.spans / log_records / metrics
_DATA_KINDS = frozenset({5, 7, 9, 10, 11})  # Metric.gauge, sum, histogram, exp. histogram, summary
_LEVELS: dict[Signal, tuple[frozenset[int], ...]] = {
    Signal.TRACES: (_GROUPS, _SCOPES, _SCOPES),
    Signal.LOGS: (_GROUPS, _SCOPES, _SCOPES),
    Signal.METRICS: (_GROUPS, _SCOPES, _SCOPES, _DATA_KINDS, _GROUPS),
}


def split_request(
    signal: Signal, body: bytes, limit: int = PIECE_BYTES, max_entries: int = MAX_ENTRIES
) -> list[bytes]:
    """Encoded requests of about ``limit`` bytes at most that together hold the items of the
    encoded request ``body``; ``[body]`` when it is no larger than ``limit``.

    Raises :class:`~gateway.otlp.wire.WireError` if the framing of the parts it walks is malformed,
    :class:`TooLargeError` if that means walking more than ``max_entries`` entries.
    """
    if len(body) <= limit:
        return [body]
    return _Splitter(max_entries).split(memoryview(body), _LEVELS[signal], limit)


def _frame(number: int, payload: bytes) -> bytes:
    return encode_varint(number << 3 | _LEN) + encode_varint(len(payload)) + payload


class _Splitter:
    """One split, counting the entries it walks."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = self.budget = max_entries

    def split(
        self, data: memoryview, levels: tuple[frozenset[int], ...], limit: int
    ) -> list[bytes]:
        """Messages of the type of ``data``, each with its other fields and a share of its
        children (the fields numbered ``levels[0]``), together holding every child once."""
        children = []
        head_parts = []
        for field in fields(data):
            self.budget -= 1
            if self.budget < 0:
                raise TooLargeError(
                    "the request holds too many entries to take apart (more than "
                    f"{self.max_entries:,} groups and items); send smaller requests"
                )
            # A child has a message's wire type; any other is an unknown field (wire.is_message)
            if field[0] in levels[0] and data[field[1]] & 7 == _LEN:
                children.append(field)
            else:
                head_parts.append(data[field[1] : field[3]])
        if levels[0] is _DATA_KINDS and children:
            # Metric.data is a oneof: decoders keep only the kind given last (a run of it merged),
            # so the pieces must not carry the points of the kinds it replaced.
            first = len(children) - 1
            while first and children[first - 1][0] == children[-1][0]:
                first -= 1
            children = children[first:]
        head = b"".join(head_parts)
        room = max(limit - len(head), 1)
        out: list[bytes] = []
        group: list[memoryview] = []
        size = 0
        for number, start, payload, end in children:
            if end - start > room and len(levels) > 1:
                if group:
                    out.append(head + b"".join(group))
                    group, size = [], 0
                # A few bytes of room go to the child's own tag and length.
                for part in self.split(data[payload:end], levels[1:], max(room - 16, 1)):
                    out.append(head + _frame(number, part))
                continue
            if group and size + (end - start) > room:
                out.append(head + b"".join(group))
                group, size = [], 0
            group.append(data[start:end])
            size += end - start
        if group or not out:
            out.append(head + b"".join(group))
        return out
