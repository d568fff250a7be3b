"""OTLP logs to Loki streams: labels, names, severities, structured metadata, limits."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from exporters.loki.exporter import (
    DEFAULT_RESOURCE_LABELS,
    StreamMapping,
    label_name,
    selector,
    severity_level,
)
from tests.exporters.loki.helpers import SPAN, T0, TRACE, kv, logs, record
from tests.support.loki_wire import parse_selector


@pytest.mark.parametrize(
    "value",
    ['plain', 'say "hi"', "back\\slash", "two\nlines", "tab\there", "cr\rx", "\x01\x7f",
     "é ü 漢字 🙂", '\\"\\n', "{a=\"b\"}, c"],
)  # fmt: skip
def test_selector_values_round_trip_through_lokis_parser(value: str) -> None:
    text = selector([("level", "info"), ("service_name", value)])
    assert "\n" not in text
    assert parse_selector(text) == {"level": "info", "service_name": value}


def test_selector_exact_form() -> None:
    text = selector([("a", 'x"y\\z\n')])
    assert text == '{a="x\\"y\\\\z\\n"}'


@pytest.mark.parametrize(
    ("number", "text", "level"),
    [(1, "", "trace"), (4, "", "trace"), (5, "", "debug"), (9, "INFO", "info"),
     (12, "", "info"), (13, "", "warn"), (17, "whatever", "error"), (21, "", "fatal"),
     (24, "", "fatal"), (0, "WARNING", "warn"), (0, "Error", "error"), (0, "critical", "fatal"),
     (0, "INFO2", "info"), (0, "debug", "debug"), (0, "", "unknown"), (0, "chatty", "unknown"),
     (99, "warn", "warn")],
)  # fmt: skip
def test_severity_to_level(number: int, text: str, level: str) -> None:
    assert severity_level(number, text) == level


@pytest.mark.parametrize(
    ("key", "name"),
    [("http.route", "http_route"), ("k8s.pod-name", "k8s_pod_name"), ("1st", "key_1st"),
     ("ok_name", "ok_name"), ("ünï", "_n_"), ("a..b", "a_b"), ("a__b", "a_b"),
     ("trailing___", "trailing_"), ("__x__y__", "__x_y__"), ("__foo", "_foo"),
     # nothing valid left: real Loki answers 500 for these, so they are dropped
     (".", ""), ("_", ""), ("__", ""), ("-_-", ""), ("日本", ""), ("", "")],
)  # fmt: skip
def test_attribute_keys_become_names_as_loki_normalises_them(key: str, name: str) -> None:
    """The facts are Loki 3's (Prometheus otlptranslator's label namer, multiple underscores
    collapsed), as listed in tests/support/REAL_LOKI.md."""
    assert label_name(key) == name


def test_default_labels_and_structured_metadata() -> None:
    nested = AnyValue()
    nested.kvlist_value.values.extend([kv("status", 200), kv("route", "/pay")])
    items = AnyValue()
    items.array_value.values.extend([AnyValue(int_value=1), AnyValue(string_value="x")])
    attrs: dict[str, Any] = {"http": nested, "tags": items, "ok": True, "ratio": 0.25,
             "count": 7.0, "big": 1e21, "small": 1e-7, "raw": b"\x00\xff",
             "scope_name": "from-record"}  # fmt: skip
    rec = record(0, **attrs)
    rec.trace_id, rec.span_id = TRACE, SPAN
    request = logs(
        [rec],
        **{"service.namespace": "shop", "deployment.environment.name": "prod",
           "deployment.environment": "legacy", "host.name": "h1"},
    )  # fmt: skip
    streams = StreamMapping().streams(request)
    [(labels, [entry])] = streams.items()
    assert dict(labels) == {  # Loki's own OTLP labels, named as Loki names them
        "deployment_environment_name": "prod",
        "deployment_environment": "legacy",
        "service_name": "checkout",
        "service_namespace": "shop",
    }
    assert entry.line == "line 0" and entry.ns == T0
    meta = dict(entry.metadata)
    assert meta == {
        "trace_id": TRACE.hex(),
        "span_id": SPAN.hex(),
        "severity_text": "INFO",
        "severity_number": "9",
        "http_status": "200",
        "http_route": "/pay",
        "tags": '[1,"x"]',
        "ok": "true",
        "ratio": "0.25",
        "count": "7",  # as Loki writes doubles (Go's FormatFloat 'f', -1)
        "big": "1000000000000000000000",
        "small": "0.0000001",
        "raw": "AP8=",
        "scope_name": "from-record",  # the record's attribute wins over the scope's name
        "scope_version": "2.1",
        "host_name": "h1",
    }
    assert [name for name, _ in entry.metadata][:2] == ["trace_id", "span_id"]


def test_non_string_bodies_are_json_and_missing_labels_fall_back() -> None:
    body = AnyValue()
    body.kvlist_value.values.extend([kv("event", "paid"), kv("amount", 12.5)])
    rec = LogRecord(time_unix_nano=T0, body=body)
    request = ExportLogsServiceRequest()
    request.resource_logs.add().scope_logs.add().log_records.append(rec)
    mapping = StreamMapping(level_label=False)
    [(labels, [entry])] = mapping.streams(request).items()
    assert labels == (("service_name", "unknown_service"),)
    assert entry.line == '{"event":"paid","amount":12.5}'


def test_json_line_format_has_everything_and_no_metadata() -> None:
    rec = record(3, "paid", order=17)
    rec.trace_id, rec.span_id = TRACE, SPAN
    mapping = StreamMapping(line_format="json")
    [(labels, [entry])] = mapping.streams(logs([rec], **{"host.name": "h1"})).items()
    assert dict(labels) == {"service_name": "checkout"}
    assert entry.metadata == []
    import json

    assert json.loads(entry.line) == {
        "body": "paid",
        "trace_id": TRACE.hex(),
        "span_id": SPAN.hex(),
        "severity_text": "INFO",
        "severity_number": 9,
        "attributes": {"order": 17},
        "resource": {"host.name": "h1"},
        "scope": {"scope_name": "app.orders", "scope_version": "2.1"},
    }


def test_entries_sorted_per_stream_and_timestamp_fallbacks() -> None:
    records = [record(i) for i in (5, 1, 4)]
    late = record(0, "observed only")
    late.time_unix_nano, late.observed_time_unix_nano = 0, T0 + 2
    never = record(0, "no time at all")
    never.time_unix_nano = 0
    error = record(9, "boom")
    error.severity_number = 17  # type: ignore[assignment]
    streams = StreamMapping(level_label=True).streams(logs([*records, late, never, error]))
    info = dict(streams)[(("level", "info"), ("service_name", "checkout"))]
    assert [e.line for e in info] == ["line 1", "observed only", "line 4", "line 5",
                                      "no time at all"]  # fmt: skip
    assert info[-1].ns > T0 * 1.0001  # "now", not zero
    assert [e.line for e in dict(streams)[(("level", "error"), ("service_name", "checkout"))]] == [
        "boom"
    ]


def test_at_most_15_labels_and_unknown_service_like_loki() -> None:
    """Loki's 18 default label attributes can exceed its 15 labels: the first 15 present are
    labels, the rest stay metadata (counted). No service.name gives unknown_service."""
    every = {key: f"v{i}" for i, key in enumerate(DEFAULT_RESOURCE_LABELS)}
    adjusted: Counter[str] = Counter()
    [(labels, [entry])] = StreamMapping().streams(logs([record(0)], **every), adjusted).items()
    names = [label_name(key) for key in DEFAULT_RESOURCE_LABELS]
    assert sorted(dict(labels)) == sorted(names[:15])
    assert set(names[15:]) <= set(dict(entry.metadata)) and adjusted["labels_over_limit"] == 1
    request = ExportLogsServiceRequest()
    request.resource_logs.add().scope_logs.add().log_records.append(record(0))
    request.resource_logs[0].resource.attributes.append(kv("k8s.pod.name", "p-1"))
    [(labels, _)] = StreamMapping().streams(request).items()
    assert dict(labels) == {"k8s_pod_name": "p-1", "service_name": "unknown_service"}


def test_long_lines_and_metadata_are_capped_to_lokis_limits() -> None:
    many = {f"k{i}": "v" for i in range(200)}
    rec = record(0, "é" * 200_000, **many)  # 400,000 bytes
    [(_, [entry])] = StreamMapping().streams(logs([rec])).items()
    assert len(entry.line.encode()) <= 256 * 1024 and entry.line == "é" * (128 * 1024)
    assert len(entry.metadata) == 128
