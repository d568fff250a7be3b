"""Logs into Elasticsearch with the real gateway process: an OpenTelemetry SDK client logs
inside spans, the gateway's elasticsearch exporter creates the documents in the `_bulk`
look-alike (tests/support/REAL_ELASTICSEARCH.md), which throttles some documents and, in ECS
mode, refuses one for its content (a value at ``order``, where the others made an object:
``order.id``; the OTel-native layout keeps attribute names whole, so there it is stored).
Every other record is stored exactly once, with its trace context."""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.elasticsearch_server import ElasticsearchServer
from tests.support.sdk_traffic import ServiceClient

API_KEY = "ZTJlOmEtc2VjcmV0LWtleQ=="
RECORDS = 40


@pytest.fixture
def es() -> Iterator[ElasticsearchServer]:
    with ElasticsearchServer(api_keys={API_KEY}) as server:
        yield server


def flat(document: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects as dotted keys (Elasticsearch treats both forms the same)."""
    out: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def seconds(stamp: str, mode: str) -> float:
    """``@timestamp`` as epoch seconds: otel mode writes epoch milliseconds with a fraction,
    ecs mode RFC 3339 with nanoseconds."""
    if mode == "otel":
        return float(stamp) / 1000
    whole, _, fraction = stamp.removesuffix("Z").partition(".")
    parsed = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.UTC)
    return parsed.timestamp() + float(f"0.{fraction or 0}")


def send_logs(endpoint: str) -> dict[str, tuple[str, str]]:
    """RECORDS log lines, each inside its own span with an ``order.id``, then one with an
    ``order`` attribute."""
    client = ServiceClient(endpoint, "orders")
    ids: dict[str, tuple[str, str]] = {}
    try:
        for i in range(RECORDS):
            with client.tracer.start_as_current_span(f"pay order {i}") as span:
                context = span.get_span_context()
                line = f"order {i} paid"
                ids[line] = (f"{context.trace_id:032x}", f"{context.span_id:016x}")
                client.logger.warning(line, extra={"order.id": i})
            if i == RECORDS // 2:
                client.flush()  # the first documents fix order.id as a number
        client.flush()
        client.logger.warning("order unknown", extra={"order": "unknown"})
    finally:
        client.close()
    return ids


@pytest.mark.parametrize("mode", ["otel", "ecs"])
def test_sdk_logs_become_documents_once_each(es: ElasticsearchServer, start_gateway, mode: str):
    gateway = start_gateway(
        {
            "exporters": {
                "elasticsearch": {
                    "endpoint": es.url,
                    "api_key": "${env:ES_API_KEY}",
                    "mapping": {"mode": mode},
                    "retry_on_failure": {"initial_interval": "100ms", "max_interval": "500ms"},
                }
            },
            "service": {
                "pipelines": {"logs": {"receivers": ["otlp"], "exporters": ["elasticsearch"]}},
                "shutdown_timeout": "5s",
            },
        },
        env={"ES_API_KEY": API_KEY},
    )
    es.reject_next_items(7, status=429)
    started = time.time()
    ids = send_logs(gateway.http_endpoint)
    ended = time.time()
    stream = "logs-generic.otel-default" if mode == "otel" else "logs-generic-default"
    deadline = time.monotonic() + 20
    while len(es.documents(stream)) < RECORDS and time.monotonic() < deadline:
        time.sleep(0.1)
    failed = "otelgate_exporter_failed_items_total"
    labels = {"exporter": "elasticsearch", "signal": "logs"}
    refused = 1 if mode == "ecs" else 0
    while gateway.metric(failed, **labels) < refused and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # a duplicate would arrive now

    documents = [flat(doc) for doc in es.documents(stream)]
    print(f"\n[elasticsearch {mode}] sent={RECORDS + 1} stored={len(documents)} "
          f"requests={len(es.requests)} refusals={len(es.refusals)}")  # fmt: skip
    assert es.data_streams() == [stream]
    message = "body.text" if mode == "otel" else "message"
    trace_key, span_key = ("trace_id", "span_id") if mode == "otel" else ("trace.id", "span.id")
    stored = {doc[message]: doc for doc in documents}
    assert len(stored) == len(documents) == RECORDS + 1 - refused, gateway.logs()
    assert set(stored) == set(ids) | ({"order unknown"} if mode == "otel" else set())
    for line, (trace_id, span_id) in ids.items():
        doc = stored[line]
        assert (doc[trace_key], doc[span_key]) == (trace_id, span_id)
        service = doc["resource.attributes.service.name"] if mode == "otel" else doc["service.name"]
        assert service == "orders"
        assert started <= seconds(doc["@timestamp"], mode) <= ended
    sent = gateway.metric("otelgate_exporter_sent_items_total", **labels)
    assert sent == RECORDS + 1 - refused
    assert gateway.metric(failed, **labels) == refused
    assert gateway.metric("otelgate_exporter_retries_total", **labels) >= 1
    assert sorted(r.status for r in es.refusals) == [400] * refused + [429] * 7
    assert all(r.headers.get("authorization") == f"ApiKey {API_KEY}" for r in es.requests)
