"""Log events and the ``PutLogEvents`` calls that carry them, within CloudWatch's limits.

A batch becomes a :class:`Plan`: per log group and stream, its events sorted by timestamp
(stable: events of one millisecond keep their order) and cut into calls of at most 10,000
events and 1,048,576 bytes (UTF-8 message bytes plus 26 per event), each spanning less than 24
hours (:mod:`.limits`). Events CloudWatch would reject for their time (older than 14 days, more
than 2 hours ahead of the gateway's clock) are refused here, counted with the reason, and never
sent. A message over the per-event limit is cut at a character boundary and ends with
``[Truncated...]`` (as the CloudWatch agent and the Collector do).

The plan keeps its progress: a call is removed once CloudWatch took it, so a push that failed
half way resumes with the first call not done. Each event knows the positions of its items in
the batch, so that the items of the calls not done can be named (:meth:`Plan.positions`).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from exporters.cloudwatch.limits import (
    EVENT_OVERHEAD,
    MAX_AGE_MS,
    MAX_CALL_BYTES,
    MAX_EVENTS_PER_CALL,
    MAX_FUTURE_MS,
    MAX_SPAN_MS,
)

TRUNCATED = "[Truncated...]"
MAX_REASONS = 3
TOO_OLD = "event older than 14 days (CloudWatch rejects it)"
TOO_NEW = "event more than 2 hours in the future (CloudWatch rejects it)"

Destination = tuple[str, str]  # (log group, log stream)


@dataclass(slots=True)
class Event:
    """One log event: milliseconds, message, its UTF-8 size and the positions in the batch
    (counted in request order) of the OTLP items it carries."""

    timestamp: int
    message: str
    size: int
    positions: tuple[int, ...]

    @property
    def items(self) -> int:
        return len(self.positions)


@dataclass(slots=True)
class Call:
    """The events of one ``PutLogEvents`` call."""

    group: str
    stream: str
    events: list[Event]

    @property
    def items(self) -> int:
        return sum(e.items for e in self.events)

    @property
    def nbytes(self) -> int:
        """The size CloudWatch counts against its 1,048,576 bytes."""
        return sum(e.size + EVENT_OVERHEAD for e in self.events)

    def request(self) -> dict[str, Any]:
        """The ``put_log_events`` arguments."""
        return {
            "logGroupName": self.group,
            "logStreamName": self.stream,
            "logEvents": [{"timestamp": e.timestamp, "message": e.message} for e in self.events],
        }

    def split(self) -> tuple[Call, Call]:
        """The first and the second half of the events (each still in order)."""
        middle = len(self.events) // 2
        return (
            Call(self.group, self.stream, self.events[:middle]),
            Call(self.group, self.stream, self.events[middle:]),
        )


@dataclass(slots=True)
class Plan:
    """The calls of one batch still to make, and what became of its items so far."""

    todo: deque[Call] = field(default_factory=deque)
    sent: int = 0
    refused: int = 0
    reasons: list[str] = field(default_factory=list)
    adjusted: Counter[str] = field(default_factory=Counter)  # reason -> items changed

    def refuse(self, items: int, reason: str) -> None:
        """Count ``items`` as refused for ``reason``."""
        if items <= 0:
            return
        self.refused += items
        if reason not in self.reasons and len(self.reasons) < MAX_REASONS:
            self.reasons.append(reason)

    @property
    def remaining(self) -> int:
        """Items in calls not made yet."""
        return sum(call.items for call in self.todo)

    def positions(self) -> list[int]:
        """The positions of the items in calls not made yet, ascending."""
        return sorted(p for call in self.todo for e in call.events for p in e.positions)

    def renumber(self) -> None:
        """Number the items of calls not made yet 0, 1, 2... in their order (their positions
        in the batch of just those items) and start counting sent and refused afresh."""
        rank = {p: i for i, p in enumerate(self.positions())}
        for call in self.todo:
            for e in call.events:
                e.positions = tuple(rank[p] for p in e.positions)
        self.sent = self.refused = 0
        self.reasons = []

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def truncate(message: str, limit: int) -> tuple[str, int, bool]:
    """``message`` cut to at most ``limit`` UTF-8 bytes at a character boundary, ending with
    ``[Truncated...]``; its size; whether it was cut."""
    data = message.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return message, len(data), False
    room = max(0, limit - len(TRUNCATED))
    head = data[:room].decode("utf-8", "ignore")  # drops a character cut in the middle
    cut = head + TRUNCATED
    return cut, utf8_size(cut), True


def event(timestamp: int, message: str, limit: int, plan: Plan, position: int) -> Event:
    """The event of the item at ``position``, its message cut to ``limit`` bytes (counted in
    ``plan.adjusted``)."""
    text, size, cut = truncate(message, limit)
    if cut:
        plan.adjusted["message_truncated"] += 1
    return Event(timestamp, text, size, (position,))


def plan_calls(
    by_destination: Mapping[Destination, Iterable[Event]], now_ms: int, plan: Plan
) -> Plan:
    """Add to ``plan`` the calls carrying ``by_destination``'s events (see the module doc)."""
    oldest, newest = now_ms - MAX_AGE_MS, now_ms + MAX_FUTURE_MS
    for (group, stream), events in by_destination.items():
        kept: list[Event] = []
        for item in events:
            if item.timestamp < oldest:
                plan.refuse(item.items, TOO_OLD)
            elif item.timestamp > newest:
                plan.refuse(item.items, TOO_NEW)
            else:
                kept.append(item)
        kept.sort(key=lambda e: e.timestamp)  # stable
        plan.todo.extend(Call(group, stream, chunk) for chunk in cut(kept))
    return plan


def cut(events: list[Event]) -> list[list[Event]]:
    """Sorted ``events`` in runs that each fit one call."""
    chunks: list[list[Event]] = []
    current: list[Event] = []
    nbytes = first = 0
    for item in events:
        cost = item.size + EVENT_OVERHEAD
        if current and (
            len(current) >= MAX_EVENTS_PER_CALL
            or nbytes + cost > MAX_CALL_BYTES
            or item.timestamp - first >= MAX_SPAN_MS
        ):
            chunks.append(current)
            current, nbytes = [], 0
        if not current:
            first = item.timestamp
        current.append(item)
        nbytes += cost
    if current:
        chunks.append(current)
    return chunks
