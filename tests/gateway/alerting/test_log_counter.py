"""Log records counted for ``log_count`` rules: severity (number, else text), a regex on the
body, per service, within the rule's window (a fake clock), and across a rule reload."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from gateway.alerting.evaluation import Observations, Sample, evaluate
from gateway.alerting.log_counter import LogCounter
from gateway.alerting.rules import RuleConfig
from gateway.otlp.batch import Batch, Signal
from tests.factories import attr, traces_batch

T0 = 1_800_000_000.0  # a multiple of the 10 s bucket

# Severity numbers of the OTLP data model.
INFO, INFO4, WARN, ERROR, ERROR2, FATAL = 9, 12, 13, 17, 18, 21


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def rule(name: str = "Errors", **log_count: Any) -> RuleConfig:
    service = log_count.pop("service", None)
    body: dict[str, Any] = {"name": name, "condition": {"log_count": {"above": 0, **log_count}}}
    if service is not None:
        body["service"] = service
    return RuleConfig.model_validate(body)


def record(number: int = ERROR, text: str = "", body: str | int = "boom") -> LogRecord:
    value = AnyValue(string_value=body) if isinstance(body, str) else AnyValue(int_value=body)
    return LogRecord(severity_number=number, severity_text=text, body=value)  # type: ignore[arg-type]


def logs(*services: tuple[str, list[LogRecord]]) -> Batch:
    """A logs batch: one resource per (service, records)."""
    request = ExportLogsServiceRequest()
    for name, records in services:
        resource_logs = request.resource_logs.add()
        resource_logs.resource.attributes.append(attr("service.name", name))
        resource_logs.scope_logs.add().log_records.extend(records)
    return Batch.from_request(Signal.LOGS, request)


def test_active_only_with_log_count_rules() -> None:
    others = RuleConfig.model_validate({"name": "Cpu", "condition": {"cpu": {"above": 0.5}}})
    assert not LogCounter([others]).active
    assert not LogCounter([rule(), others][:0]).active
    disabled = RuleConfig.model_validate(
        {"name": "Off", "enabled": False, "condition": {"log_count": {"above": 1}}}
    )
    assert not LogCounter([disabled]).active
    counter = LogCounter([others, rule()])
    assert counter.active
    assert counter.counts(others) == {}


def test_other_signals_are_ignored() -> None:
    counter = LogCounter([rule()], clock=Clock())
    counter.observe(traces_batch(5))
    assert counter.counts(rule()) == {}


@pytest.mark.parametrize(
    ("severity", "expected"),
    [("trace", 6), ("info", 6), ("warn", 4), ("error", 3), ("fatal", 1)],
)
def test_severity_number_at_or_above(severity: str, expected: int) -> None:
    counter = LogCounter([rule(severity=severity)], clock=Clock())
    records = [record(n) for n in (INFO, INFO4, WARN, ERROR, ERROR2, FATAL)]
    counter.observe(logs(("api", records)))
    assert counter.counts(rule(severity=severity)) == {"api": expected}


def test_error_is_the_default_severity() -> None:
    counter = LogCounter([rule()], clock=Clock())
    counter.observe(logs(("api", [record(WARN), record(ERROR), record(FATAL)])))
    assert counter.counts(rule()) == {"api": 2}


@pytest.mark.parametrize(
    ("text", "counted"),
    [
        ("ERROR", True),
        ("error", True),
        ("Critical", True),
        ("FATAL", True),
        ("WARNING", True),
        ("warn", True),
        ("INFO", False),
        ("debug", False),
        ("", False),
        ("LOUD", False),
    ],
)
def test_without_a_severity_number_the_text_decides(text: str, counted: bool) -> None:
    counter = LogCounter([rule(severity="warn")], clock=Clock())
    counter.observe(logs(("api", [record(0, text)])))
    assert counter.counts(rule(severity="warn")) == ({"api": 1} if counted else {})


def test_a_severity_number_wins_over_the_text() -> None:
    counter = LogCounter([rule()], clock=Clock())
    counter.observe(logs(("api", [record(INFO, "ERROR"), record(ERROR, "INFO")])))
    assert counter.counts(rule()) == {"api": 1}


def test_match_searches_the_body() -> None:
    r = rule(match="timeout|refused")
    counter = LogCounter([r], clock=Clock())
    bodies = ["connection refused", "read timeout after 5s", "ok", "Refused", "TIMEOUT"]
    counter.observe(logs(("api", [record(body=b) for b in bodies])))
    assert counter.counts(r) == {"api": 2}  # a search, case-sensitive
    numbers = rule("Numbers", match="^42$")
    counter = LogCounter([numbers], clock=Clock())
    counter.observe(logs(("api", [record(body=42), record(body=7), record(body="42")])))
    assert counter.counts(numbers) == {"api": 2}  # a non-string body as text


def test_match_and_severity_both_apply() -> None:
    r = rule(match="disk", severity="error")
    counter = LogCounter([r], clock=Clock())
    counter.observe(logs(("api", [record(ERROR, body="disk full"), record(WARN, body="disk"),
                                  record(ERROR, body="other")])))  # fmt: skip
    assert counter.counts(r) == {"api": 1}


def test_counts_per_service() -> None:
    every, only_api = rule("Every"), rule("OnlyApi", service="api")
    counter = LogCounter([every, only_api], clock=Clock())
    counter.observe(logs(("api", [record()] * 3), ("web", [record()] * 2), ("db", [record(INFO)])))
    counter.observe(logs(("web", [record()])))
    assert counter.counts(every) == {"api": 3, "web": 3}
    assert counter.counts(only_api) == {"api": 3}
    assert counter.counts(rule("Unknown")) == {}


def test_counts_expire_with_the_window() -> None:
    clock = Clock()
    r = rule(window="100s")  # buckets of 10 s
    counter = LogCounter([r], clock=clock)
    counter.observe(logs(("api", [record()] * 2)))  # bucket T0
    clock.now = T0 + 25
    counter.observe(logs(("api", [record()] * 3), ("web", [record()])))  # bucket T0 + 20
    clock.now = T0 + 29
    counter.observe(logs(("api", [record()])))  # same bucket
    assert counter.counts(r) == {"api": 6, "web": 1}
    # A bucket counts while any of its 10 s lies within the window.
    clock.now = T0 + 109.9
    assert counter.counts(r) == {"api": 6, "web": 1}
    clock.now = T0 + 110
    assert counter.counts(r) == {"api": 4, "web": 1}
    clock.now = T0 + 130
    assert counter.counts(r) == {}
    clock.now = T0 + 135
    counter.observe(logs(("api", [record()])))
    assert counter.counts(r) == {"api": 1}


@pytest.mark.parametrize(("window", "width"), [("1m", 6.0), ("10m", 10.0), ("5s", 0.5)])
def test_buckets_are_a_tenth_of_the_window_up_to_10s(window: str, width: float) -> None:
    clock = Clock()
    r = rule(window=window)
    seconds = RuleConfig.model_validate(
        {"name": "X", "condition": {"log_count": {"above": 0, "window": window}}}
    ).condition.log_count
    assert seconds is not None
    counter = LogCounter([r], clock=clock)
    counter.observe(logs(("api", [record()])))
    clock.now = T0 + seconds.window + width - width / 100  # the bucket still overlaps
    assert counter.counts(r) == {"api": 1}
    clock.now = T0 + seconds.window + width
    assert counter.counts(r) == {}


def test_a_short_window_has_buckets_of_100ms() -> None:
    clock = Clock()
    r = rule(window="1s")
    counter = LogCounter([r], clock=clock)
    counter.observe(logs(("api", [record()])))
    clock.now = T0 + 0.95
    assert counter.counts(r) == {"api": 1}
    clock.now = T0 + 1.1
    assert counter.counts(r) == {}


def test_a_new_record_keeps_older_ones_still_in_the_window() -> None:
    clock = Clock(T0 + 5)
    r = rule(window="100s")
    counter = LogCounter([r], clock=clock)
    counter.observe(logs(("api", [record()])))  # bucket T0, the record at T0 + 5
    clock.now = T0 + 100  # it is 95 s old: within the window
    assert counter.counts(r) == {"api": 1}
    counter.observe(logs(("api", [record()])))
    assert counter.counts(r) == {"api": 2}
    clock.now = T0 + 110
    assert counter.counts(r) == {"api": 1}


def test_each_rule_has_its_own_window() -> None:
    clock = Clock()
    short, long = rule("Short", window="30s"), rule("Long", window="1h")
    counter = LogCounter([short, long], clock=clock)
    counter.observe(logs(("api", [record()] * 4)))
    clock.now = T0 + 600
    counter.observe(logs(("api", [record()])))
    assert counter.counts(short) == {"api": 1}
    assert counter.counts(long) == {"api": 5}


def test_old_buckets_are_dropped_as_records_arrive() -> None:
    clock = Clock()
    r = rule(window="100s")
    counter = LogCounter([r], clock=clock)
    for step in range(100):  # a record every 10 s for 1000 s
        clock.now = T0 + 10 * step
        counter.observe(logs(("api", [record()])))
    # At T0 + 990 the window is (T0 + 890, T0 + 990]: the buckets T0 + 890 ... T0 + 990.
    assert counter.counts(r) == {"api": 11}
    assert len(counter._rules["Errors"].buckets["api"]) == 11


def test_replace_rules_keeps_the_counts_of_unchanged_rules() -> None:
    clock = Clock()
    same, changed, gone = rule("Same"), rule("Changed"), rule("Gone")
    counter = LogCounter([same, changed, gone], clock=clock)
    counter.observe(logs(("api", [record()] * 2)))
    # Timing, severity of the alert or annotations may change: the counting did not.
    same_again = RuleConfig.model_validate(
        {**same.model_dump(by_alias=True), "for": "5m", "severity": "critical",
         "annotations": {"summary": "{{ value }} errors"}}
    )  # fmt: skip
    changed_again = rule("Changed", match="boom")
    fresh = rule("Fresh")
    counter.replace_rules([same_again, changed_again, fresh])
    assert counter.counts(same_again) == {"api": 2}
    assert counter.counts(changed_again) == {}  # counting changed: starts over
    assert counter.counts(fresh) == {}
    assert counter.counts(gone) == {}
    counter.observe(logs(("api", [record()])))
    assert counter.counts(same_again) == {"api": 3}
    assert counter.counts(changed_again) == {"api": 1}
    counter.replace_rules([rule("Same", service="api")])  # a service limit changes counting
    assert counter.counts(rule("Same", service="api")) == {}
    counter.replace_rules([])
    assert not counter.active


def test_counts_feed_the_log_count_condition() -> None:
    r = rule(above=2)
    counter = LogCounter([r], clock=Clock())
    counter.observe(logs(("api", [record()] * 3), ("web", [record()] * 2)))
    seen = Observations(log_counts=counter.counts)
    assert evaluate(r, seen) == [Sample({"service": "api"}, 3.0, 2.0, "count")]
