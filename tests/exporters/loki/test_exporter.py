"""LokiExporter: mapping OTLP logs to Loki streams, and what the conformance server receives.

The conformance server (tests/support/loki_server.py) decodes requests with its own message
classes, so a wrong field number, wire type or compression format in the exporter fails here.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import cramjam
import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from exporters.loki.exporter import (
    PUSH_PATH,
    LokiExporter,
    StreamMapping,
)
from gateway.components import build_exporter
from gateway.config.loading import parse_config
from gateway.errors import PermanentError, RefusedDataError, RetryableError, ThrottledError
from gateway.otlp.batch import Batch, Signal
from tests.exporters.loki.helpers import batch, sample_logs
from tests.support.loki_server import LokiServer
from tests.support.loki_wire import PushRequest
from tests.support.otlp_samples import sample_request
from tests.support.ports import free_port


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
