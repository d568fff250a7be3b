"""The error tracker: grouping, counting once per request, samples, regressions, changes."""

from __future__ import annotations

import os

from gateway.error_tracking.config import ErrorTrackingConfig
from gateway.error_tracking.tracker import ErrorTracker
from tests.gateway.error_tracking.batches import (
    OTHER_STACK,
    PY_STACK,
    log_with_exception,
    logs,
    resource,
    span_with_exception,
    traces,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def tracker(**settings: object) -> tuple[ErrorTracker, Clock]:
    clock = Clock()
    return ErrorTracker(ErrorTrackingConfig.model_validate(settings), clock), clock


def test_the_same_bug_with_other_messages_and_lines_is_one_group() -> None:
    errors, _ = tracker()
    spans = [
        span_with_exception(message=f"cart {n} is empty", stack=PY_STACK.format(line=n, cart=n))
        for n in range(1, 21)
    ]
    errors.observe(traces(*spans))
    errors.observe(traces(span_with_exception("KeyError", "'o-1'", OTHER_STACK)))
    assert len(errors.groups) == 2
    by_type = {g.type: g for g in errors.groups.values()}
    cart = by_type["ValueError"]
    assert (cart.count, cart.events) == (20, 20)
    assert cart.culprit and "create" in cart.culprit
    assert cart.message == "cart <num> is empty"
    assert cart.services == {"shop": cart.last_seen}
    assert list(cart.versions) == ["1.0.0"]
    assert by_type["KeyError"].count == 1
    assert errors.occurrences == 21


def test_a_span_event_and_a_log_of_one_request_count_once() -> None:
    errors, _ = tracker()
    trace_id = os.urandom(16)
    errors.observe(traces(span_with_exception(trace_id=trace_id)))
    errors.observe(logs(log_with_exception(trace_id=trace_id)))
    # The server's own error log of the same exception, without trace context.
    errors.observe(logs(log_with_exception()))
    (group,) = errors.groups.values()
    assert (group.count, group.events) == (1, 3)
    # Another request: counted again, even when only its traceless log arrives.
    errors.observe(logs(log_with_exception(time_ns=1_700_000_060_000_000_000)))
    assert group.count == 2


def test_batches_without_exceptions_are_not_walked() -> None:
    errors, _ = tracker()
    plain = traces(span_with_exception())
    del plain.request.resource_spans[0].scope_spans[0].spans[0].events[:]  # type: ignore[union-attr]
    plain.mark_modified()
    errors.observe(plain)
    assert errors.groups == {} and errors.occurrences == 0


def test_a_log_record_without_exception_type_or_message_is_not_an_exception() -> None:
    errors, _ = tracker()
    record = log_with_exception()
    kept = [kv for kv in record.attributes if kv.key == "exception.stacktrace"]
    del record.attributes[:]
    record.attributes.extend(kept)
    errors.observe(logs(record))
    assert errors.groups == {}


def test_samples_are_rate_limited_per_group() -> None:
    errors, clock = tracker(samples_per_group=3, sample_interval="60s")
    for n in range(100):
        errors.observe(traces(span_with_exception(span_attributes={"http.route": "/c", "n": n})))
    groups, samples = errors.take_changes()
    assert len(groups) == 1 and groups[0].count == 100
    assert len(samples) == 3
    assert samples[0].attributes == {"http.route": "/c"}
    assert samples[0].trace_id is not None and len(samples[0].trace_id) == 32
    clock.now += 61
    for _ in range(50):
        errors.observe(traces(span_with_exception()))
    assert len(errors.take_changes()[1]) == 1  # one more after the interval, not 50


def test_a_resolved_group_regresses_only_in_a_newer_version() -> None:
    errors, clock = tracker()
    errors.observe(traces(span_with_exception(), res=resource(version="1.4.0")))
    (group,) = errors.groups.values()
    clock.now += 10
    assert errors.set_status(group.id, "resolved", "alice") is group
    assert group.resolved_versions == ["1.4.0"]
    for version in ("1.4.0", "1.3.9"):  # old code still running: stays resolved
        errors.observe(traces(span_with_exception(), res=resource(version=version)))
    assert group.status == "resolved" and errors.changed_groups("regression") == []
    errors.observe(traces(span_with_exception(), res=resource(version="1.10.0")))
    assert group.status == "unresolved" and group.regressions == 1
    assert group.regressed_at == clock.now
    (labels,) = errors.changed_groups("regression")
    assert labels["group"] == group.id and labels["service"] == "shop"
    assert labels["exception_type"] == "ValueError"


def test_without_versions_any_new_occurrence_after_resolving_regresses() -> None:
    errors, _ = tracker()
    errors.observe(traces(span_with_exception(), res=resource(version=None)))
    (group,) = errors.groups.values()
    errors.set_status(group.id, "resolved", None)
    errors.observe(traces(span_with_exception(), res=resource(version=None)))
    assert group.status == "unresolved" and group.regressions == 1


def test_ignored_groups_count_but_never_report_changes() -> None:
    errors, _ = tracker()
    errors.observe(traces(span_with_exception()))
    (group,) = errors.groups.values()
    assert len(errors.changed_groups("new")) == 1
    errors.set_status(group.id, "ignored", "bob")
    errors.observe(traces(span_with_exception()))
    assert group.status == "ignored" and group.count == 2
    assert errors.changed_groups("new") == []


def test_changes_are_reported_for_the_change_window_only() -> None:
    errors, clock = tracker()
    errors.change_window = 10
    errors.observe(traces(span_with_exception()))
    assert [c["exception_type"] for c in errors.changed_groups("new")] == ["ValueError"]
    clock.now += 11
    assert errors.changed_groups("new") == []


def test_max_groups_counts_what_it_cannot_track() -> None:
    errors, _ = tracker(max_groups=1)
    errors.observe(traces(span_with_exception()))
    errors.observe(traces(span_with_exception("KeyError", "'x'", OTHER_STACK)))
    assert len(errors.groups) == 1 and errors.untracked == 1 and errors.occurrences == 2


def test_environment_and_message_fallback_without_a_stack() -> None:
    errors, _ = tracker()
    env = resource(**{"deployment.environment.name": "prod"})
    for user in (17, 23):
        errors.observe(logs(log_with_exception("NotFound", f"user {user} not found", ""), res=env))
    (group,) = errors.groups.values()
    assert group.basis == "message" and group.message == "user <num> not found"
    assert list(group.environments) == ["prod"] and group.count == 2


def test_groups_age_by_arrival_not_by_the_clients_clock() -> None:
    errors, clock = tracker()
    a_year_ago = int((clock.now - 365 * 86400) * 1e9)  # a client whose clock is far behind
    errors.observe(traces(span_with_exception(time_ns=a_year_ago)))
    clock.now += 100
    errors.observe(traces(span_with_exception("KeyError", "'x'", OTHER_STACK)))
    (old,) = [g for g in errors.groups.values() if g.type == "ValueError"]
    assert old.first_seen == old.last_seen == clock.now - 100
    gone = errors.forget_before(clock.now - 50)
    assert gone == [old.id] and [g.type for g in errors.groups.values()] == ["KeyError"]


def test_a_sample_is_completed_by_the_other_reports_of_its_exception() -> None:
    errors, _ = tracker()
    trace_id = os.urandom(16)
    errors.observe(logs(log_with_exception()))  # the server's log first: no trace context
    errors.observe(logs(log_with_exception(trace_id=trace_id)))  # the app's error log line
    span = span_with_exception(trace_id=trace_id, span_attributes={"http.route": "/checkout",
                                                                    "user.id": "u-7"})  # fmt: skip
    errors.observe(traces(span))
    (group,) = errors.groups.values()
    assert (group.count, group.events) == (1, 3)
    (sample,) = errors.take_changes()[1]
    assert sample.trace_id == trace_id.hex() and sample.span_id == span.span_id.hex()
    assert sample.source == "span"
    assert sample.attributes == {"http.route": "/checkout", "user.id": "u-7"}


def test_stacks_are_parsed_once_per_shape_and_messages_still_group_alone() -> None:
    errors, _ = tracker()
    for n in range(30):  # other line numbers and messages: one parse
        stack = PY_STACK.format(line=n, cart=n)
        errors.observe(traces(span_with_exception(message=f"cart {n} is empty", stack=stack)))
    assert len(errors._fingerprints) == 1
    for message in ("user 1 not found", "order 2 missing", "user 3 not found"):
        errors.observe(logs(log_with_exception("NotFound", message, "")))
    by_message = sorted(g.message for g in errors.groups.values() if g.type == "NotFound")
    assert by_message == ["order <num> missing", "user <num> not found"]


def test_only_the_newest_samples_stay_referenced_for_completion() -> None:
    errors, _ = tracker(samples_per_group=1)
    traced = []
    for n in range(1100):  # 1100 bugs, one sample each, all reported without a trace first
        stack = PY_STACK.replace("create", f"create_{n}").format(line=1, cart=1)
        errors.observe(logs(log_with_exception(stack=stack)))
        traced.append(stack)
    samples = errors.take_changes()[1]
    assert len(samples) == 1100
    # Their traced twins arrive: the newest 1000 samples are completed, the oldest 100 no
    # longer referenced (memory stays bounded), their groups still counted once.
    for stack in traced:
        errors.observe(traces(span_with_exception(stack=stack)))
    completed = [s for s in samples if s.trace_id is not None]
    assert len(completed) == 1000 and all(s.trace_id is None for s in samples[:100])
    assert all(g.count == 1 and g.events == 2 for g in errors.groups.values())
