"""OTLP log records as CloudWatch Logs events: the message (JSON object or raw body), the
timestamp, and the log group and stream from the resource's attributes."""

from __future__ import annotations

import json

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from exporters.cloudwatch.batching import Plan
from exporters.cloudwatch.logs import EMPTY, LogMapping
from exporters.cloudwatch.names import NameTemplate
from tests.exporters.cloudwatch.helpers import NOW_MS, NOW_NS, add_resource_logs, kv, logs, record

TRACE, SPAN = bytes(range(1, 17)), bytes(range(0xA0, 0xA8))


def mapping(group: str = "/otelgate/logs", stream: str = "{service.name}", raw: bool = False,
            limit: int = 1_048_550) -> LogMapping:  # fmt: skip
    return LogMapping(
        NameTemplate.parse(group, "group"), NameTemplate.parse(stream, "stream"),
        raw=raw, max_event_size=limit,
    )  # fmt: skip


def test_the_json_message_carries_the_record_resource_and_scope() -> None:
    rec = record("paid", NOW_MS, **{"order.id": 42, "ok": True})
    rec.trace_id, rec.span_id, rec.flags = TRACE, SPAN, 1
    plan = Plan()
    request = logs([rec], **{"deployment.environment.name": "prod"})
    ((where, (event,)),) = mapping().events(request, plan).items()
    assert where == ("/otelgate/logs", "checkout")
    assert event.timestamp == NOW_MS and event.positions == (0,)
    assert json.loads(event.message) == {
        "body": "paid",
        "severity_number": 9,
        "severity_text": "INFO",
        "flags": 1,
        "trace_id": TRACE.hex(),
        "span_id": SPAN.hex(),
        "attributes": {"order.id": 42, "ok": True},
        "resource": {"service.name": "checkout", "deployment.environment.name": "prod"},
        "scope": {"name": "app.orders", "version": "2.1"},
    }
    assert event.size == len(event.message.encode())


def test_structured_bodies_stay_structured_in_json_and_become_json_text_raw() -> None:
    body = AnyValue(kvlist_value=KeyValueList(values=[kv("user", "ann"), kv("n", 3)]))
    rec = LogRecord(time_unix_nano=NOW_NS, body=body)
    (event,) = next(iter(mapping().events(logs([rec]), Plan()).values()))
    assert json.loads(event.message) == {
        "body": {"user": "ann", "n": 3}, "resource": {"service.name": "checkout"},
        "scope": {"name": "app.orders", "version": "2.1"},
    }  # fmt: skip
    (raw,) = next(iter(mapping(raw=True).events(logs([rec]), Plan()).values()))
    assert json.loads(raw.message) == {"user": "ann", "n": 3}


def test_raw_log_sends_the_body_and_refuses_records_without_one() -> None:
    records = [record("plain text ü"), LogRecord(time_unix_nano=NOW_NS), record("after")]
    plan = Plan()
    (events,) = mapping(raw=True).events(logs(records), plan).values()
    assert [e.message for e in events] == ["plain text ü", "after"]
    assert [e.positions for e in events] == [(0,), (2,)]
    assert (plan.refused, plan.reasons) == (1, [EMPTY])


def test_the_timestamp_falls_back_to_observed_time_then_now() -> None:
    records = [
        LogRecord(time_unix_nano=5_000_000_123, body=AnyValue(string_value="a")),
        LogRecord(observed_time_unix_nano=7_000_000_999, body=AnyValue(string_value="b")),
        LogRecord(body=AnyValue(string_value="c")),
    ]
    (events,) = mapping(raw=True).events(logs(records), Plan(), now_ns=9_000_000_000).values()
    assert [e.timestamp for e in events] == [5000, 7000, 9000]


def test_group_and_stream_come_from_resource_attributes() -> None:
    request = logs([record("a")], **{"k8s.namespace.name": "shop", "service.instance.id": "i-1"})
    add_resource_logs(request, [record("b"), record("c")], **{"service.name": "pay:v2*beta"})
    plan = Plan()
    found = mapping("/k8s/{k8s.namespace.name}", "{service.name}/{service.instance.id}").events(
        request, plan
    )
    assert {where: [json.loads(e.message)["body"] for e in events]
            for where, events in found.items()} == {
        ("/k8s/shop", "checkout/i-1"): ["a"],
        ("/k8s/undefined", "pay_v2_beta/undefined"): ["b", "c"],  # missing, and : * replaced
    }  # fmt: skip
    assert [e.positions for e in found[("/k8s/undefined", "pay_v2_beta/undefined")]] == [
        (1,), (2,)]  # fmt: skip


def test_names_from_data_are_made_valid_and_cut_at_512() -> None:
    group = NameTemplate.parse("/apps/{service.name}", "group")
    assert group.render({"service.name": "Zahlung & Co ü"}) == "/apps/Zahlung___Co__"
    assert group.render({"service.name": "x" * 600}) == ("/apps/" + "x" * 600)[:512]
    stream = NameTemplate.parse("{host.name}", "stream")
    assert stream.render({"host.name": "web 1 ü"}) == "web 1 ü"  # streams take anything but : *
    assert stream.render({}) == "undefined"
    assert NameTemplate.parse("static", "stream").keys == ()


@pytest.mark.parametrize("raw", [True, False])
def test_long_messages_are_truncated_and_counted(raw: bool) -> None:
    plan = Plan()
    records = [record("x" * 5000), record("short")]
    (events,) = mapping(raw=raw, limit=2048).events(logs(records), plan).values()
    assert events[0].size <= 2048 and events[0].message.endswith("[Truncated...]")
    assert plan.adjusted == {"message_truncated": 1}
    assert plan.refused == 0
