"""OTLP logs to Elasticsearch documents: both modes' fields, routing, sanitising, timestamps."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from exporters.elasticsearch.mapping import (
    DocumentMapping,
    MappingMode,
    data_stream_part,
    epoch_millis,
    level,
    rfc3339,
)
from tests.exporters.loki.helpers import SPAN, T0, TRACE, kv, logs, record

Doc = dict[str, Any]


def docs(request: ExportLogsServiceRequest, mode: MappingMode = "otel", **kw: str) -> list[Doc]:
    out = DocumentMapping(mode, **kw).documents(request)
    return [{"_index": d.index, **orjson.loads(d.source)} for d in out]


def one(rec: LogRecord, mode: MappingMode = "otel", **resource: Any) -> Doc:
    [doc] = docs(logs([rec], **resource), mode)
    return doc


def full_record() -> LogRecord:
    rec = record(5, "GET /orders failed", **{"http.method": "GET", "n": 3, "ratio": 1.0})
    rec.observed_time_unix_nano, rec.trace_id, rec.span_id = T0 + 999, TRACE, SPAN
    rec.severity_number, rec.severity_text = 17, "ERROR"  # type: ignore[assignment]
    rec.dropped_attributes_count, rec.event_name = 2, "order.failed"
    return rec


# --- otel mode ------------------------------------------------------------------------------


def test_otel_document_has_the_collectors_shape() -> None:
    request = logs([full_record()], **{"host.name": "web-1"})
    request.resource_logs[0].schema_url = "https://opentelemetry.io/schemas/1.26.0"
    scope = request.resource_logs[0].scope_logs[0].scope
    scope.attributes.append(kv("lib", "x"))
    scope.dropped_attributes_count = 1
    [doc] = docs(request)
    assert doc == {
        "_index": "logs-generic.otel-default",
        "@timestamp": "1700000000000.000005",
        "observed_timestamp": "1700000000000.000999",
        "data_stream": {"type": "logs", "dataset": "generic.otel", "namespace": "default"},
        "severity_text": "ERROR",
        "severity_number": 17,
        "trace_id": TRACE.hex(),
        "span_id": SPAN.hex(),
        "attributes": {"http.method": "GET", "n": 3, "ratio": 1.0},
        "dropped_attributes_count": 2,
        "event_name": "order.failed",
        "resource": {
            "schema_url": "https://opentelemetry.io/schemas/1.26.0",
            "attributes": {"service.name": "checkout", "host.name": "web-1"},
        },
        "scope": {
            "name": "app.orders",
            "version": "2.1",
            "attributes": {"lib": "x"},
            "dropped_attributes_count": 1,
        },
        "body": {"text": "GET /orders failed"},
    }
    assert b'"ratio":1.0' in DocumentMapping().documents(request)[0].source  # stays a float


def test_otel_leaves_out_empty_fields() -> None:
    request = ExportLogsServiceRequest()
    request.resource_logs.add().scope_logs.add().log_records.add(
        time_unix_nano=T0, trace_id=bytes(16), span_id=bytes(8)
    )
    [doc] = docs(request)
    assert doc == {
        "_index": "logs-generic.otel-default",
        "@timestamp": "1700000000000.000000",
        "data_stream": {"type": "logs", "dataset": "generic.otel", "namespace": "default"},
        "resource": {},
        "scope": {},
    }


def _any(**kind: Any) -> AnyValue:
    return AnyValue(**kind)


MAP = _any(kvlist_value=KeyValueList(values=[kv("k", "v")]))


@pytest.mark.parametrize(
    ("body", "expected"),
    [(_any(string_value="hi"), {"text": "hi"}), (_any(string_value=""), {"text": ""}),
     (_any(int_value=42), {"text": "42"}), (_any(double_value=0.25), {"text": "0.25"}),
     (_any(double_value=7.0), {"text": "7"}), (_any(bool_value=True), {"text": "true"}),
     (_any(bytes_value=b"\x00\xff"), {"text": "AP8="}),
     (MAP, {"structured": {"k": "v"}}),
     (_any(array_value=ArrayValue(values=[MAP, MAP])), {"structured": [{"k": "v"}, {"k": "v"}]}),
     (_any(array_value=ArrayValue(values=[MAP, _any(int_value=1)])),
      {"structured": {"value": [{"k": "v"}, 1]}}),
     (_any(array_value=ArrayValue()), {"structured": []})],
)  # fmt: skip
def test_otel_body_text_or_structured(body: AnyValue, expected: Doc) -> None:
    rec = record(0)
    rec.body.CopyFrom(body)
    assert one(rec)["body"] == expected


def test_otel_event_name_from_the_field_else_a_string_attribute() -> None:
    assert one(record(0, None, **{"event.name": "a"}))["event_name"] == "a"
    assert "event_name" not in one(record(0, None, **{"event.name": 5}))
    rec = record(0, None, **{"event.name": "a"})
    rec.event_name = "b"
    assert one(rec)["event_name"] == "b"


# --- ecs mode -------------------------------------------------------------------------------

RESOURCE = {
    "service.name": "checkout", "service.version": "1.4.2", "service.instance.id": "i-1",
    "deployment.environment": "prod", "host.name": "web-1", "host.arch": "amd64",
    "os.type": "darwin", "os.version": "14.1", "telemetry.sdk.name": "opentelemetry",
    "telemetry.sdk.language": "python", "telemetry.sdk.version": "1.30.0",
    "k8s.namespace.name": "shop", "k8s.cluster.name": "eu-1", "cloud.region": "eu-west-1",
}  # fmt: skip


def test_ecs_document_maps_semantic_conventions() -> None:
    rec = full_record()
    exception = {"exception.type": "KeyError", "exception.message": "gone",
                 "exception.stacktrace": "Traceback...", "exception.escaped": True}  # fmt: skip
    rec.attributes.extend(kv(k, v) for k, v in exception.items())
    doc = one(rec, "ecs", **RESOURCE)
    assert doc == {
        "_index": "logs-generic-default",
        "@timestamp": "2023-11-14T22:13:20.000000005Z",
        "data_stream": {"type": "logs", "dataset": "generic", "namespace": "default"},
        "message": "GET /orders failed",
        "log": {"level": "ERROR"},
        "event": {"severity": 17, "action": "order.failed",
                  "created": "2023-11-14T22:13:20.000000999Z"},
        "trace": {"id": TRACE.hex()},
        "span": {"id": SPAN.hex()},
        "http": {"method": "GET"},
        "n": 3,
        "ratio": 1.0,
        "error": {"type": "KeyError", "message": "gone", "stack_trace": "Traceback..."},
        "exception": {"escaped": True},
        "service": {"name": "checkout", "version": "1.4.2", "node": {"name": "i-1"},
                    "environment": "prod", "language": {"name": "python"}},
        "otel": {"scope": {"name": "app.orders", "version": "2.1"}},
        "host": {"hostname": "web-1", "name": "web-1", "architecture": "amd64",
                 "os": {"platform": "darwin", "version": "14.1", "type": "macos"}},
        "kubernetes": {"namespace": "shop"},
        "orchestrator": {"cluster": {"name": "eu-1"}},
        "cloud": {"region": "eu-west-1"},
        "agent": {"name": "opentelemetry/python", "version": "1.30.0"},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("resource", "name", "version"),
    [({}, "otlp", None), ({"telemetry.sdk.name": "opentelemetry"}, "opentelemetry", None),
     ({"telemetry.sdk.language": "go", "telemetry.sdk.version": "1.2"}, "otlp/go", "1.2"),
     ({"telemetry.sdk.name": "opentelemetry", "telemetry.distro.name": "elastic",
       "telemetry.distro.version": "9", "telemetry.sdk.version": "1"},
      "opentelemetry/unknown/elastic", "9")],
)  # fmt: skip
def test_ecs_agent_from_telemetry_attributes(resource: Doc, name: str, version: Any) -> None:
    agent = one(record(0), "ecs", **resource)["agent"]
    assert agent == ({"name": name} if version is None else {"name": name, "version": version})


@pytest.mark.parametrize(
    ("resource", "os_type"),
    [({"os.type": "linux"}, "linux"), ({"os.type": "windows"}, "windows"),
     ({"os.type": "solaris"}, "unix"), ({"os.type": "freebsd"}, None),
     ({"os.type": "linux", "os.name": "Android"}, "android"), ({"os.name": "iOS"}, "ios")],
)  # fmt: skip
def test_ecs_host_os_type(resource: Doc, os_type: str | None) -> None:
    host_os = one(record(0), "ecs", **resource)["host"]["os"]
    assert host_os.get("type") == os_type


@pytest.mark.parametrize(
    ("number", "text", "expected"),
    [(9, "Information", "Information"), (9, "", "INFO"), (10, "", "INFO2"), (1, "", "TRACE"),
     (13, "", "WARN"), (20, "", "ERROR4"), (24, "", "FATAL4"), (0, "", ""), (30, "", "")],
)  # fmt: skip
def test_ecs_log_level(number: int, text: str, expected: str) -> None:
    assert level(number, text) == expected
    rec = record(0)
    rec.severity_number, rec.severity_text = number, text  # type: ignore[assignment]
    assert one(rec, "ecs").get("log", {}).get("level", "") == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [(_any(string_value="plain"), "plain"), (_any(int_value=7), "7"),
     (MAP, '{"k":"v"}'), (_any(array_value=ArrayValue(values=[MAP])), '[{"k":"v"}]'),
     (AnyValue(), None)],
)  # fmt: skip
def test_ecs_message_from_any_body(body: AnyValue, message: str | None) -> None:
    rec = record(0)
    rec.body.CopyFrom(body)
    assert one(rec, "ecs").get("message") == message


def test_ecs_collisions_keep_every_value_under_labels() -> None:
    attrs = {"message": "attr", "service.name": "other", "host": "h", "message.x": 1,
             "trace": "t", "same": "s", "labels.message": "taken"}  # fmt: skip
    rec = record(0, None, **attrs)
    rec.trace_id = TRACE
    doc = one(rec, "ecs", same="s", **{"log.level": "zzz", "host.name": "web-1"})
    assert doc["message"] == "line 0"  # the mapping's own fields win
    assert doc["log"] == {"level": "INFO"}
    assert doc["service"]["name"] == "other"  # record > resource
    assert doc["host"] == {"value": "h", "hostname": "web-1", "name": "web-1"}  # <key>.value
    assert doc["trace"] == {"id": TRACE.hex(), "value": "t"}
    assert doc["same"] == "s"
    assert doc["labels"] == {"message": "taken", "message_": "attr", "message_x": "1",
                             "service_name": "checkout", "log_level": "zzz"}  # fmt: skip


# --- routing --------------------------------------------------------------------------------


def routed(
    record_ds: str | None, scope_ds: str | None, resource_ds: str | None
) -> ExportLogsServiceRequest:
    rec = record(0) if record_ds is None else record(0, None, **{"data_stream.dataset": record_ds})
    request = logs([rec], **({} if resource_ds is None else {"data_stream.dataset": resource_ds}))
    if scope_ds is not None:
        request.resource_logs[0].scope_logs[0].scope.attributes.append(
            kv("data_stream.dataset", scope_ds)
        )
    return request


@pytest.mark.parametrize(
    ("levels", "dataset"),
    [(("rec", "scope", "res"), "rec"), ((None, "scope", "res"), "scope"),
     ((None, None, "res"), "res"), ((None, None, None), "generic"),
     (("", "scope", "res"), "scope")],  # an empty value counts as absent
)  # fmt: skip
@pytest.mark.parametrize("mode", ["otel", "ecs"])
def test_routing_precedence_record_scope_resource_default(
    levels: tuple[str | None, str | None, str | None], dataset: str, mode: MappingMode
) -> None:
    [doc] = docs(routed(*levels), mode)
    expected = dataset + (".otel" if mode == "otel" else "")
    assert doc["_index"] == f"logs-{expected}-default"
    assert doc["data_stream"] == {"type": "logs", "dataset": expected, "namespace": "default"}
    text = orjson.dumps(doc).decode()
    assert '"data_stream.dataset"' not in text  # consumed at every level, not copied


def test_namespace_routing_sanitising_and_configured_defaults() -> None:
    rec = record(0, None, **{"data_stream.namespace": "Team A", "data_stream.type": "metrics"})
    [doc] = docs(logs([rec], **{"data_stream.dataset": 5}), "ecs", dataset="x", namespace="y")
    assert doc["_index"] == "logs-5-team_a"
    assert "attributes" not in one(rec)
    [doc] = docs(logs([record(0)]), dataset="Web-Logs", namespace="")
    assert doc["_index"] == "logs-web_logs.otel-default"


@pytest.mark.parametrize(
    ("raw", "part"),
    [("generic", "generic"), ("MyApp", "myapp"), ("my-app", "my_app"), ("a b\tc", "a_b_c"),
     ('\\/*?"<>|,#:', "___________"), ("nginx.access", "nginx.access"), ("", ""),
     ("x" * 101, "x" * 100), ("É" * 60, "é" * 50), ("a\x00\x7f", "a__")],
)  # fmt: skip
def test_data_stream_part(raw: str, part: str) -> None:
    assert data_stream_part(raw) == part
    assert data_stream_part(part) == part  # idempotent: config validation compares


def test_otel_suffix_after_truncating_the_dataset() -> None:
    [doc] = docs(routed("D" * 300, None, None))
    assert doc["data_stream"]["dataset"] == "d" * 95 + ".otel"
    assert doc["_index"] == f"logs-{'d' * 95}.otel-default"


# --- timestamps, ids, order -----------------------------------------------------------------


def test_timestamps_record_then_observed_then_now() -> None:
    rec = record(0)
    rec.time_unix_nano, rec.observed_time_unix_nano = 0, T0 + 1
    assert one(rec)["@timestamp"] == "1700000000000.000001"
    assert one(rec, "ecs")["@timestamp"] == "2023-11-14T22:13:20.000000001Z"
    rec.observed_time_unix_nano = 0
    before = time.time_ns() // 1_000_000
    stamp, observed = one(rec)["@timestamp"], one(rec).get("observed_timestamp")
    assert before <= int(stamp.split(".")[0]) <= time.time_ns() // 1_000_000
    assert observed is None


@pytest.mark.parametrize(
    ("ns", "millis", "rfc"),
    [(0, "0.000000", "1970-01-01T00:00:00.000000000Z"),
     (1_710_273_641_123_456_789, "1710273641123.456789", "2024-03-12T20:00:41.123456789Z"),
     (1_705_314_600_000_000_001, "1705314600000.000001", "2024-01-15T10:30:00.000000001Z"),
     (2**64 - 1, "18446744073709.551615", "2554-07-21T23:34:33.709551615Z")],
)  # fmt: skip
def test_timestamp_formats(ns: int, millis: str, rfc: str) -> None:
    assert (epoch_millis(ns), rfc3339(ns)) == (millis, rfc)


@pytest.mark.parametrize("mode", ["otel", "ecs"])
def test_ids_lowercase_hex_and_all_zero_left_out(mode: MappingMode) -> None:
    rec = record(0)
    rec.trace_id, rec.span_id = bytes(15) + b"\xab", bytes(8)
    text = orjson.dumps(one(rec, mode)).decode()
    assert '"' + "00" * 15 + 'ab"' in text
    assert "span_id" not in text and '"span"' not in text


@pytest.mark.parametrize("mode", ["otel", "ecs"])
def test_one_document_per_record_in_request_order(mode: MappingMode) -> None:
    request = ExportLogsServiceRequest()
    expected = []
    for r in range(3):
        rl = request.resource_logs.add()
        rl.resource.attributes.append(kv("data_stream.namespace", f"ns{r}"))
        for s in range(2):
            sl = rl.scope_logs.add()
            for i in range(r + s):  # includes an empty scope
                sl.log_records.append(record(i, f"{r}/{s}/{i}"))
                expected.append((f"{r}/{s}/{i}", f"ns{r}"))
    before = request.SerializeToString()
    out = docs(request, mode)
    got = [(d.get("message") or d["body"]["text"], d["data_stream"]["namespace"]) for d in out]
    assert got == expected
    assert request.SerializeToString() == before  # the request is not changed
