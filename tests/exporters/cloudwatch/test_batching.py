"""Cutting events into PutLogEvents calls within CloudWatch's limits: events and bytes per
call, the 24-hour span, chronological order, truncation, and events CloudWatch would reject for
their time."""

from __future__ import annotations

import random

import pytest

from exporters.cloudwatch.batching import (
    TOO_NEW,
    TOO_OLD,
    TRUNCATED,
    Event,
    Plan,
    event,
    plan_calls,
    truncate,
    utf8_size,
)
from exporters.cloudwatch.limits import (
    EVENT_OVERHEAD,
    MAX_AGE_MS,
    MAX_CALL_BYTES,
    MAX_EVENT_BYTES,
    MAX_EVENTS_PER_CALL,
    MAX_FUTURE_MS,
    MAX_SPAN_MS,
)
from tests.exporters.cloudwatch.helpers import HOUR_MS, NOW_MS

G = ("group", "stream")


def ev(ms: int, message: str, position: int) -> Event:
    return Event(ms, message, utf8_size(message), (position,))


def check_calls(plan: Plan) -> None:
    """Every call within the limits, in order, of one destination."""
    for call in plan.todo:
        stamps = [e.timestamp for e in call.events]
        assert 0 < len(call.events) <= MAX_EVENTS_PER_CALL
        assert call.nbytes <= MAX_CALL_BYTES
        assert sum(len(e.message.encode()) + 26 for e in call.events) == call.nbytes
        assert stamps == sorted(stamps)
        assert stamps[-1] - stamps[0] < MAX_SPAN_MS


def test_many_small_events_fill_calls_of_10000() -> None:
    events = [ev(NOW_MS - i, f"m{i}", i) for i in range(25_001)]
    plan = plan_calls({G: events}, NOW_MS, Plan())
    check_calls(plan)
    assert [len(c.events) for c in plan.todo] == [10_000, 10_000, 5_001]
    sent = [p for c in plan.todo for e in c.events for p in e.positions]
    assert sorted(sent) == list(range(25_001))  # every event exactly once


def test_big_events_fill_calls_up_to_1048576_bytes() -> None:
    size = 100_000
    events = [ev(NOW_MS, chr(ord("a") + i % 26) * size, i) for i in range(25)]
    plan = plan_calls({G: events}, NOW_MS, Plan())
    check_calls(plan)
    per_call = MAX_CALL_BYTES // (size + EVENT_OVERHEAD)  # 10 events of 100,026 bytes
    assert [len(c.events) for c in plan.todo] == [per_call, per_call, 25 - 2 * per_call]


def test_a_call_of_exactly_the_byte_limit_is_one_call() -> None:
    # two events whose sizes plus overhead make exactly 1,048,576 bytes
    first = MAX_CALL_BYTES // 2 - EVENT_OVERHEAD
    events = [ev(NOW_MS, "x" * first, 0), ev(NOW_MS, "y" * first, 1)]
    plan = plan_calls({G: events}, NOW_MS, Plan())
    assert [c.nbytes for c in plan.todo] == [MAX_CALL_BYTES]
    events.append(ev(NOW_MS, "z", 2))
    plan = plan_calls({G: events}, NOW_MS, Plan())
    assert [len(c.events) for c in plan.todo] == [2, 1]


def test_multibyte_messages_are_counted_in_utf8_bytes() -> None:
    message = "é" * 50_000  # 100,000 bytes, 50,000 characters
    events = [ev(NOW_MS, message, i) for i in range(12)]
    plan = plan_calls({G: events}, NOW_MS, Plan())
    check_calls(plan)
    assert [len(c.events) for c in plan.todo] == [10, 2]


def test_events_are_sorted_stably_and_the_span_stays_under_24_hours() -> None:
    rng = random.Random(7)
    start = NOW_MS - 13 * 24 * HOUR_MS
    stamps = [start + rng.randrange(0, 12 * 24 * HOUR_MS) for _ in range(3000)]
    stamps += [start + 5 * HOUR_MS] * 20  # equal timestamps keep their order
    events = [ev(s, f"e{i}", i) for i, s in enumerate(stamps)]
    plan = plan_calls({G: events}, NOW_MS, Plan())
    check_calls(plan)
    flat = [e for c in plan.todo for e in c.events]
    assert [e.timestamp for e in flat] == sorted(stamps)
    same = [e.positions[0] for e in flat if e.timestamp == start + 5 * HOUR_MS]
    assert same == sorted(same)
    assert len(plan.todo) >= 12  # twelve days cannot go in fewer calls


def test_the_span_boundary_starts_a_new_call() -> None:
    events = [ev(NOW_MS - MAX_SPAN_MS, "a", 0), ev(NOW_MS - 1, "b", 1), ev(NOW_MS, "c", 2)]
    plan = plan_calls({G: events}, NOW_MS, Plan())
    assert [[e.message for e in c.events] for c in plan.todo] == [["a", "b"], ["c"]]


def test_destinations_get_their_own_calls() -> None:
    other = ("group", "other")
    plan = plan_calls({G: [ev(NOW_MS, "a", 0)], other: [ev(NOW_MS, "b", 1)]}, NOW_MS, Plan())
    assert [(c.group, c.stream) for c in plan.todo] == [G, other]


def test_events_cloudwatch_would_reject_for_their_time_are_refused_and_counted() -> None:
    events = [
        ev(NOW_MS - MAX_AGE_MS - 1, "too old", 0),
        ev(NOW_MS - MAX_AGE_MS, "oldest kept", 1),
        ev(NOW_MS + MAX_FUTURE_MS, "newest kept", 2),
        ev(NOW_MS + MAX_FUTURE_MS + 1, "too new", 3),
        ev(NOW_MS + 10 * MAX_FUTURE_MS, "too new", 4),
    ]
    plan = plan_calls({G: events}, NOW_MS, Plan())
    assert plan.refused == 3
    assert plan.reasons == [TOO_OLD, TOO_NEW]
    kept = [e.message for c in plan.todo for e in c.events]
    assert kept == ["oldest kept", "newest kept"]
    assert plan.remaining == 2 and plan.positions() == [1, 2]


@pytest.mark.parametrize("limit", [MAX_EVENT_BYTES, 262_118, 1024])
def test_long_messages_are_cut_at_a_character_boundary(limit: int) -> None:
    message = ("aé€😀" * (limit // 5 + 10))[:limit]  # over the limit in UTF-8 bytes
    assert utf8_size(message) > limit
    cut, size, truncated = truncate(message, limit)
    assert truncated and cut.endswith(TRUNCATED)
    assert size == utf8_size(cut) <= limit
    assert size > limit - 4 - len(TRUNCATED)  # lost at most one character to the boundary
    assert message.startswith(cut[: -len(TRUNCATED)])
    cut.encode("utf-8")  # no half character left


def test_short_messages_are_left_alone_and_truncation_is_counted() -> None:
    plan = Plan()
    kept = event(NOW_MS, "x" * 1024, 1024, plan, 0)
    assert kept.message == "x" * 1024 and not plan.adjusted
    cut = event(NOW_MS, "x" * 1025, 1024, plan, 1)
    assert cut.size == 1024 and plan.adjusted == {"message_truncated": 1}


def test_renumbering_names_the_items_left_in_order() -> None:
    events = [ev(NOW_MS + i, f"e{i}", p) for i, p in enumerate([3, 9, 4, 12])]
    plan = plan_calls({G: events}, NOW_MS, Plan())
    plan.refuse(2, "x")
    plan.sent = 5
    plan.renumber()
    assert plan.positions() == [0, 1, 2, 3]
    assert [e.positions for e in plan.todo[0].events] == [(0,), (2,), (1,), (3,)]
    assert (plan.sent, plan.refused, plan.reasons) == (0, 0, [])
