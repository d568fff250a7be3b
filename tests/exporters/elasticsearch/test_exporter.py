"""The elasticsearch exporter against the `_bulk` look-alike (tests/support/REAL_ELASTICSEARCH.md):
what it sends, and that every document ends up stored once or counted failed with its reason,
whatever Elasticsearch answers per document or for the whole request."""

from __future__ import annotations

import asyncio
import gzip
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from exporters.elasticsearch.exporter import ElasticsearchExporter
from exporters.elasticsearch.mapping import DocumentMapping
from exporters.queue import ExporterQueue
from exporters.retry import RetryPolicy
from exporters.settings import TlsSettings
from gateway.errors import PermanentError, RetryableError
from gateway.otlp.batch import Batch, Signal
from gateway.selfmetrics import GatewayMetrics
from tests.exporters.loki.helpers import batch, logs, record
from tests.support.certs import TestCa
from tests.support.elasticsearch_server import ElasticsearchServer
from tests.support.ports import free_port

FAST = RetryPolicy(initial_interval=0.05, max_interval=0.1, max_elapsed_time=10.0)
STREAM = "logs-generic.otel-default"
ECS_STREAM = "logs-generic-default"
KEY = "a2V5OnNlY3JldA=="


@pytest.fixture
def es() -> Iterator[ElasticsearchServer]:
    with ElasticsearchServer(api_keys={KEY}) as server:
        yield server


@pytest.fixture
async def exporter(es: ElasticsearchServer) -> AsyncIterator[ElasticsearchExporter]:
    exporter = ElasticsearchExporter(es.url, api_key=KEY)
    await exporter.start()
    yield exporter
    await exporter.shutdown()


class Delivered:
    """An exporter in a one-consumer queue with fast retries, and what the queue counted."""

    def __init__(self, exporter: ElasticsearchExporter) -> None:
        self.registry = CollectorRegistry()
        self.queue = ExporterQueue(
            "es", exporter, GatewayMetrics(self.registry), num_consumers=1, retry=FAST
        )

    def count(self, what: str) -> float:
        labels = {"exporter": "es", "signal": "logs"}
        return self.registry.get_sample_value(f"otelgate_exporter_{what}_total", labels) or 0.0

    async def send(self, *batches: Batch, timeout: float = 10.0) -> None:
        await self.queue.start()
        try:
            for each in batches:
                self.queue.offer(each)
            await _until(lambda: self.queue.size == 0, timeout)
        finally:
            await self.queue.shutdown(1.0)


async def _until(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not delivered in time"
        await asyncio.sleep(0.02)


def _bodies(es: ElasticsearchServer, stream: str = STREAM) -> list[str]:
    return [doc["body"]["text"] for doc in es.documents(stream)]


def _ndjson(body: bytes) -> list[dict[str, Any]]:
    assert body.endswith(b"\n")
    return [orjson.loads(line) for line in body.split(b"\n")[:-1]]


async def test_one_bulk_request_creates_every_record_in_its_data_stream(
    es: ElasticsearchServer, exporter: ElasticsearchExporter
) -> None:
    assert await exporter.push(batch(logs([record(i) for i in range(25)]))) is None
    assert _bodies(es) == [f"line {i}" for i in range(25)]
    (request,) = es.requests
    assert (request.method, request.path) == ("POST", "/_bulk")
    assert request.query["filter_path"] == "errors,items.*.error,items.*.status"
    assert request.headers["content-type"] == "application/x-ndjson"
    assert request.headers["content-encoding"] == "gzip"
    assert request.headers["authorization"] == f"ApiKey {KEY}"
    lines = _ndjson(request.body)
    assert lines[0::2] == [{"create": {"_index": STREAM}}] * 25
    assert [doc["body"]["text"] for doc in lines[1::2]] == _bodies(es)


async def test_the_sent_body_is_the_encoded_batch(es: ElasticsearchServer) -> None:
    exporter = ElasticsearchExporter(es.url, api_key=KEY, compression="none")
    await exporter.start()
    try:
        sent = batch(logs([record(i, service="x") for i in range(3)]))
        await exporter.push(sent)
    finally:
        await exporter.shutdown()
    assert "content-encoding" not in es.requests[0].headers
    assert es.requests[0].body == exporter.encode(sent)
    assert gzip.compress(exporter.encode(sent))  # the bytes the gzip path would compress


async def test_only_throttled_documents_are_sent_again(
    es: ElasticsearchServer, exporter: ElasticsearchExporter
) -> None:
    es.reject_next_items(3, status=429)
    delivered = Delivered(exporter)
    await delivered.send(batch(logs([record(i) for i in range(10)])))
    assert sorted(_bodies(es), key=lambda b: int(b.split()[1])) == [f"line {i}" for i in range(10)]
    assert [len(_ndjson(r.body)) // 2 for r in es.requests] == [10, 3]
    assert delivered.count("sent_items") == 10
    assert delivered.count("failed_items") == 0
    assert delivered.count("retries") == 1


async def test_a_document_refused_for_its_content_costs_only_itself(
    es: ElasticsearchServer,
) -> None:
    """logs-* data streams ignore a malformed value (ignore_malformed), but an object where
    the stream maps a value is refused (REAL_ELASTICSEARCH.md)."""
    exporter = ElasticsearchExporter(es.url, api_key=KEY, mapping=DocumentMapping(mode="ecs"))
    await exporter.start()
    await exporter.push(batch(logs([record(0, count=7)])))  # count is a long now
    es.reject_next_items(2, status=503)
    records = [record(i + 1, count=i) for i in range(6)]
    records[4] = record(5, **{"count.items": "3"})  # an object at count
    delivered = Delivered(exporter)
    await delivered.send(batch(logs(records)))
    await exporter.shutdown()
    stored = sorted(doc["message"] for doc in es.documents(ECS_STREAM))
    assert stored == sorted(["line 0"] + [f"line {i}" for i in (1, 2, 3, 4, 6)])
    assert delivered.count("sent_items") == 5
    assert delivered.count("failed_items") == 1
    error = delivered.queue.status.last_error or ""
    assert "1 of 6 logs refused" in error and "HTTP 400 document_parsing_exception" in error
    assert [(r.data_stream, r.status) for r in es.refusals] == [
        (ECS_STREAM, 503), (ECS_STREAM, 503), (ECS_STREAM, 400)
    ]  # fmt: skip


async def test_whole_request_errors(es: ElasticsearchServer) -> None:
    exporter = ElasticsearchExporter(es.url, api_key="wrong-key")
    await exporter.start()
    try:
        with pytest.raises(PermanentError, match=r"HTTP 401.*check api_key"):
            await exporter.push(batch(logs([record(0)])))
    finally:
        await exporter.shutdown()
    exporter = ElasticsearchExporter(es.url, api_key=KEY)
    await exporter.start()
    try:
        es.fail_next(429, retry_after="2")
        with pytest.raises(RetryableError) as info:
            await exporter.push(batch(logs([record(0)])))
        assert info.value.retry_after == 2.0
        es.fail_next(502)
        with pytest.raises(RetryableError):
            await exporter.push(batch(logs([record(1)])))
        assert es.documents(STREAM) == []
    finally:
        await exporter.shutdown()


async def test_a_request_over_the_servers_limit_is_sent_in_pieces() -> None:
    with ElasticsearchServer(max_content_length=20_000) as es:
        exporter = ElasticsearchExporter(es.url, compression="none")
        await exporter.start()
        delivered = Delivered(exporter)
        await delivered.send(batch(logs([record(i, body="x" * 500 + str(i)) for i in range(100)])))
        await exporter.shutdown()
    assert len(es.documents(STREAM)) == 100
    assert es.requests[0].status == 413
    assert all(len(r.body) <= 20_000 for r in es.requests if r.status == 200)
    assert delivered.count("sent_items") == 100


async def test_max_request_bytes_cuts_before_sending(es: ElasticsearchServer) -> None:
    exporter = ElasticsearchExporter(es.url, api_key=KEY, max_request_bytes=8000)
    await exporter.start()
    delivered = Delivered(exporter)
    await delivered.send(batch(logs([record(i, body="y" * 400) for i in range(60)])))
    await exporter.shutdown()
    assert len(es.documents(STREAM)) == 60
    assert all(len(gzip.decompress(gzip.compress(r.body))) <= 8000 for r in es.requests)
    assert all(r.status == 200 for r in es.requests) and len(es.requests) >= 4


async def test_records_route_to_their_data_streams(
    es: ElasticsearchServer, exporter: ElasticsearchExporter
) -> None:
    request = logs([record(0), record(1, **{"data_stream.dataset": "audit"})])
    request.resource_logs[0].resource.attributes.add(
        key="data_stream.namespace"
    ).value.string_value = "prod"
    await exporter.push(batch(request))
    assert sorted(es.data_streams()) == ["logs-audit.otel-prod", "logs-generic.otel-prod"]


async def test_ecs_mapping_goes_to_the_plain_dataset(es: ElasticsearchServer) -> None:
    exporter = ElasticsearchExporter(es.url, api_key=KEY, mapping=DocumentMapping(mode="ecs"))
    await exporter.start()
    try:
        await exporter.push(batch(logs([record(0, body="hello")])))
    finally:
        await exporter.shutdown()
    (doc,) = es.documents("logs-generic-default")
    assert doc["message"] == "hello"
    assert doc["service"]["name"] == "checkout" or doc.get("service.name") == "checkout"


async def test_nothing_listening_is_retryable() -> None:
    exporter = ElasticsearchExporter(f"http://127.0.0.1:{free_port()}")
    await exporter.start()
    try:
        with pytest.raises(RetryableError):
            await exporter.push(batch(logs([record(0)])))
    finally:
        await exporter.shutdown()


async def test_other_signals_are_refused(exporter: ElasticsearchExporter) -> None:
    traces = Batch.from_request(Signal.TRACES, Signal.TRACES.request_type())
    with pytest.raises(PermanentError, match="logs only"):
        await exporter.push(traces)


def _mtls_server(tmp_path: Path) -> tuple[ssl.SSLContext, TestCa]:
    ca = TestCa(tmp_path)
    server = ca.server()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server.cert_file, server.key_file)
    context.load_verify_locations(ca.ca_file)
    context.verify_mode = ssl.CERT_REQUIRED
    return context, ca


async def test_tls_with_a_private_ca_and_a_client_certificate(tmp_path: Path) -> None:
    context, ca = _mtls_server(tmp_path)
    client = ca.client("otelgate")
    tls = TlsSettings(
        ca_file=str(ca.ca_file), cert_file=str(client.cert_file), key_file=str(client.key_file)
    )
    with ElasticsearchServer(tls=context) as es:
        assert es.url.startswith("https://")
        exporter = ElasticsearchExporter(es.url, tls=tls)
        await exporter.start()
        try:
            assert await exporter.push(batch(logs([record(0), record(1)]))) is None
        finally:
            await exporter.shutdown()
        assert _bodies(es) == ["line 0", "line 1"]
        untrusting = ElasticsearchExporter(es.url)  # the system's CAs: not ours
        await untrusting.start()
        try:
            with pytest.raises(RetryableError, match="CERTIFICATE_VERIFY_FAILED"):
                await untrusting.push(batch(logs([record(2)])))
        finally:
            await untrusting.shutdown()
        assert len(es.documents(STREAM)) == 2
