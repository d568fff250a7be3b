"""LokiExporter: mapping OTLP logs to Loki streams, and what the conformance server receives.

The conformance server (tests/support/loki_server.py) decodes requests with its own message
classes, so a wrong field number, wire type or compression format in the exporter fails here.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import cramjam
import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from exporters.loki.exporter import (
    DEFAULT_RESOURCE_LABELS,
    PUSH_PATH,
    LokiExporter,
    StreamMapping,
    label_name,
    selector,
    severity_level,
)
from gateway.components import build_exporter
from gateway.config.loading import parse_config
from gateway.errors import PermanentError, RefusedDataError, RetryableError, ThrottledError
from gateway.otlp.batch import Batch, Signal
from tests.support.loki_server import LokiServer
from tests.support.loki_wire import PushRequest, parse_selector
from tests.support.otlp_samples import sample_request
from tests.support.ports import free_port

T0 = 1_700_000_000_000_000_000
TRACE = bytes(range(1, 17))
SPAN = bytes(range(0xA0, 0xA8))


def kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, AnyValue):
        return KeyValue(key=key, value=value)
    field = {bool: "bool_value", int: "int_value", float: "double_value", bytes: "bytes_value"}
    return KeyValue(key=key, value=AnyValue(**{field.get(type(value), "string_value"): value}))


def logs(records: list[LogRecord], **resource: Any) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    attrs = {"service.name": "checkout", **resource}
    rl = request.resource_logs.add()
    rl.resource.attributes.extend(kv(k, v) for k, v in attrs.items())
    sl = rl.scope_logs.add()
    sl.scope.name, sl.scope.version = "app.orders", "2.1"
    sl.log_records.extend(records)
    return request


def record(i: int, body: str | None = None, **attrs: Any) -> LogRecord:
    rec = LogRecord(
        time_unix_nano=T0 + i,
        severity_number=9,  # type: ignore[arg-type]
        severity_text="INFO",
        body=AnyValue(string_value=body if body is not None else f"line {i}"),
        attributes=[kv(k, v) for k, v in attrs.items()],
    )
    return rec


def sample_logs(n: int) -> ExportLogsServiceRequest:
    request = sample_request(Signal.LOGS, n)
    assert isinstance(request, ExportLogsServiceRequest)
    return request


def batch(request: ExportLogsServiceRequest) -> Batch:
    return Batch.from_request(Signal.LOGS, request)


@pytest.fixture
def loki() -> Iterator[LokiServer]:
    # The samples carry fixed 2023 timestamps: this Loki runs with reject_old_samples: false.
    with LokiServer(max_age_ns=None) as server:
        yield server


@pytest.fixture
async def exporter(loki: LokiServer) -> AsyncIterator[LokiExporter]:
    exp = LokiExporter(loki.url, tenant_id="team-a", headers={"X-Extra": "1"}, timeout=5)
    await exp.start()
    yield exp
    await exp.shutdown()


# --- labels, names, severities --------------------------------------------------------------


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


# --- on the wire, decoded by the conformance server ------------------------------------------


Row = tuple[tuple[tuple[str, str], ...], str, int]


def _expected(request: ExportLogsServiceRequest) -> list[Row]:
    """(labels, line, ns) for every record, computed from the OTLP request itself."""
    return sorted(
        ((("service_name", "checkout"),), r.body.string_value, r.time_unix_nano)
        for rl in request.resource_logs for sl in rl.scope_logs for r in sl.log_records
    )  # fmt: skip


def _received(loki: LokiServer) -> list[Row]:
    return sorted((tuple(sorted(labels.items())), e.line, e.ns) for labels, e in loki.entries())


async def test_snappy_protobuf_push_decodes_to_what_was_sent(
    exporter: LokiExporter, loki: LokiServer
) -> None:
    request = sample_logs(12)
    sent = batch(request)
    await exporter.push(sent)
    [push] = loki.pushes
    assert push.kind == "protobuf"
    assert push.headers["content-type"] == "application/x-protobuf"
    assert "content-encoding" not in push.headers
    assert push.headers["x-scope-orgid"] == "team-a" and push.headers["x-extra"] == "1"
    assert push.headers["user-agent"].startswith("otelgate/")
    assert _received(loki) == _expected(request)
    # ... and every stream and entry equals the exporter's mapping, pair for pair.
    mapping = StreamMapping().streams(request)
    assert {tuple(sorted(s.labels.items())): [(e.ns, e.line, list(e.metadata)) for e in s.entries]
            for s in push.streams} == {
        k: [(e.ns, e.line, e.metadata) for e in v] for k, v in mapping.items()
    }  # fmt: skip
    traced = [e for _, e in loki.entries() if "trace_id" in e.meta]
    assert len(traced) == 6 and all(len(e.meta["trace_id"]) == 32 for e in traced)
    assert loki.refused == []


@pytest.mark.parametrize("compression", ["none", "gzip"])
async def test_json_push_decodes_to_what_was_sent(loki: LokiServer, compression: str) -> None:
    exp = LokiExporter(loki.url, format="json", compression=compression)  # type: ignore[arg-type]
    await exp.start()
    try:
        request = sample_logs(7)
        await exp.push(batch(request))
    finally:
        await exp.shutdown()
    [push] = loki.pushes
    assert push.kind == "json"
    assert push.headers["content-type"] == "application/json"
    assert push.headers.get("content-encoding", "none") == compression
    assert _received(loki) == _expected(request)
    first = next(e for _, e in loki.entries() if e.line == "log line 0")
    assert first.meta["span_id"] == "5b00000000000001" and first.meta["n"] == "0"


async def test_conformance_server_rejects_what_loki_rejects(loki: LokiServer) -> None:
    """The checks can fail: wrong numbering, framed snappy, bad labels, no type; entries out of
    order within one push are accepted (Loki's default ``unordered_writes: true``)."""
    good = PushRequest()
    stream = good.streams.add(labels='{a="b"}')
    stream.entries.add(line="x").timestamp.seconds = 1
    wrong_field = good.SerializeToString().replace(b"\x12\x01x", b"\x2a\x01x")  # line as field 5
    unordered = PushRequest()
    s2 = unordered.streams.add(labels='{a="b"}')
    s2.entries.add(line="late").timestamp.seconds = 5
    s2.entries.add(line="early").timestamp.seconds = 4
    bad_label = PushRequest()
    bad_label.streams.add(labels='{a.b="c"}').entries.add(line="x").timestamp.seconds = 1
    cases = [
        (bytes(cramjam.snappy.compress_raw(wrong_field)), "application/x-protobuf", 400),
        (bytes(cramjam.snappy.compress(good.SerializeToString())), "application/x-protobuf", 400),
        (bytes(cramjam.snappy.compress_raw(unordered.SerializeToString())),
         "application/x-protobuf", 204),
        (bytes(cramjam.snappy.compress_raw(bad_label.SerializeToString())),
         "application/x-protobuf", 400),
        (good.SerializeToString(), "application/x-protobuf", 400),  # not compressed
        (b'{"streams":[{"stream":{"a":"b"},"values":[[1,"x"]]}]}', "application/json", 400),
        (b'{"streams":[{"stream":{},"values":[["1","x"]]}]}', "application/json", 400),
        (bytes(cramjam.snappy.compress_raw(good.SerializeToString())), "text/plain", 415),
        (bytes(cramjam.snappy.compress_raw(good.SerializeToString())), "application/x-protobuf",
         204),
    ]  # fmt: skip
    async with httpx.AsyncClient() as client:
        for body, content_type, status in cases:
            response = await client.post(
                f"{loki.url}/loki/api/v1/push", content=body, headers={"Content-Type": content_type}
            )
            assert response.status_code == status, (content_type, response.text)
    assert len(loki.pushes) == 2 and len(loki.refused) == len(cases) - 2
    assert [e.line for e in loki.pushes[0].streams[0].entries] == ["late", "early"]
    assert "framed" in loki.refused[1].message
    assert "unknown field" in loki.refused[0].message


def _push_body(*streams: tuple[str, list[tuple[int, str, list[tuple[str, str]]]]]) -> bytes:
    request = PushRequest()
    for labels, entries in streams:
        stream = request.streams.add(labels=labels)
        for ns, line, metadata in entries:
            entry = stream.entries.add(line=line)
            entry.timestamp.seconds, entry.timestamp.nanos = divmod(ns, 10**9)
            for name, value in metadata:
                entry.structuredMetadata.add(name=name, value=value)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


async def test_conformance_server_answers_like_real_loki() -> None:
    """Partial acceptance (400, valid entries stored), duplicates ignored, a name with nothing
    valid refuses the whole push (500), a push over the burst is always 429, and with
    ``unordered_writes: false`` a late entry is refused alone."""
    now = time.time_ns()
    headers = {"Content-Type": "application/x-protobuf"}
    with LokiServer() as real, LokiServer(unordered_writes=False, burst_bytes=1000) as strict:
        async with httpx.AsyncClient() as client:

            async def push(server: LokiServer, body: bytes) -> httpx.Response:
                return await client.post(f"{server.url}{PUSH_PATH}", content=body, headers=headers)

            mixed = _push_body(
                ('{a="b"}', [(now, "ok 1", []), (now - 8 * 86400 * 10**9, "too old", []),
                             (now + 1, "x" * (256 * 1024 + 1), []), (now + 2, "ok 2", [])]),
                ('{a.b="c"}', [(now, "bad labels", [])]),
            )  # fmt: skip
            response = await push(real, mixed)
            assert response.status_code == 400
            assert "too old" in response.text and "Max entry size" in response.text
            assert [e.line for _, e in real.entries()] == ["ok 1", "ok 2"]
            assert len(real.ignored) == 3
            response = await push(real, _push_body(('{a="b"}', [(now, "ok 1", [])])))
            assert response.status_code == 204 and real.duplicates == 1
            assert len(real.entries()) == 2

            nameless = _push_body(('{a="b"}', [(now + 5, "fine", [("ok", "1"), (".", "v")])]))
            response = await push(real, nameless)
            assert response.status_code == 500
            assert 'normalization for label name "." resulted in invalid name "_"' in response.text
            assert len(real.entries()) == 2  # nothing of that push was stored

            big = _push_body(('{a="b"}', [(now + i, "y" * 200, []) for i in range(6)]))
            for _ in range(3):  # never passes, however often it is tried
                response = await push(strict, big)
                assert response.status_code == 429
                assert "ingestion rate limit exceeded" in response.text
            assert strict.entries() == []

            response = await push(strict, _push_body(('{a="b"}', [(now, "new", [])])))
            assert response.status_code == 204
            late = _push_body(('{a="b"}', [(now - 1, "late", []), (now + 1, "newer", [])]))
            response = await push(strict, late)
            assert response.status_code == 400 and "entry out of order" in response.text
            assert [e.line for _, e in strict.entries()] == ["new", "newer"]


@pytest.mark.parametrize(
    ("status", "retry_after", "error", "delay"),
    [(429, "3", ThrottledError, 3.0), (503, None, ThrottledError, None),
     (500, None, RetryableError, None), (502, "1", RetryableError, 1.0),
     (400, None, RefusedDataError, None), (413, None, RefusedDataError, None),
     (401, None, PermanentError, None)],
)  # fmt: skip
async def test_status_classification(
    exporter: LokiExporter,
    loki: LokiServer,
    status: int,
    retry_after: str | None,
    error: type[Exception],
    delay: float | None,
) -> None:
    message = "entry for stream '{a=\"b\"}' has timestamp too old"
    loki.fail_next(1, status, retry_after, message)
    with pytest.raises(error) as info:
        await exporter.push(batch(sample_logs(2)))
    assert type(info.value) is error
    assert message in str(info.value) and str(status) in str(info.value)
    if isinstance(info.value, RetryableError):
        assert info.value.retry_after == delay
    await exporter.push(batch(sample_logs(2)))  # the next one goes through
    assert len(loki.pushes) == 1


async def test_nothing_listening_is_retryable() -> None:
    exp = LokiExporter(f"http://127.0.0.1:{free_port()}")
    await exp.start()
    try:
        with pytest.raises(RetryableError):
            await exp.push(batch(sample_logs(1)))
    finally:
        await exp.shutdown()


async def test_other_signals_are_permanent_errors(exporter: LokiExporter) -> None:
    with pytest.raises(PermanentError, match="logs only"):
        await exporter.push(Batch.from_request(Signal.TRACES, sample_request(Signal.TRACES)))


async def test_otlp_mode_posts_to_lokis_otlp_endpoint(loki: LokiServer) -> None:
    config = parse_config(
        f"""
exporters:
  loki:
    endpoint: {loki.url}
    protocol: otlp
    compression: gzip
    tenant_id: team-b
service:
  pipelines:
    logs: {{receivers: [otlp], exporters: [loki]}}
receivers:
  otlp: {{protocols: {{http: null}}}}
"""
    )
    exp = build_exporter("loki", config.exporters["loki"])
    assert isinstance(exp, LokiExporter)
    await exp.start()
    try:
        request = sample_logs(4)
        await exp.push(batch(request))
    finally:
        await exp.shutdown()
    [received] = loki.otlp
    assert received.request == request
    assert received.headers["x-scope-orgid"] == "team-b"
    assert received.headers["content-encoding"] == "gzip"
    assert loki.pushes == []


async def test_config_builds_a_json_exporter_with_custom_labels(loki: LokiServer) -> None:
    config = parse_config(
        f"""
exporters:
  loki:
    endpoint: {loki.url}/
    format: json
    line_format: json
    level_label: false
    resource_labels: {{host.name: host, service.name: app}}
service:
  pipelines:
    logs: {{receivers: [otlp], exporters: [loki]}}
receivers:
  otlp: {{protocols: {{http: null}}}}
"""
    )
    exp = build_exporter("loki", config.exporters["loki"])
    await exp.start()
    try:
        await exp.push(batch(sample_logs(3)))
    finally:
        await exp.shutdown()
    assert {tuple(sorted(labels.items())) for labels, _ in loki.entries()} == {
        (("app", "checkout"), ("host", "h1"))
    }
    assert all(e.line.startswith('{"body":') and not e.metadata for _, e in loki.entries())
