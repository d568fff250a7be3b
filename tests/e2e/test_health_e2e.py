"""Health, host metrics and span metrics on the real gateway process.

An "instrumented service" (the OpenTelemetry Python SDK) sends SERVER spans with a known error
ratio and known latencies (explicit start and end times); the gateway's ``/health`` endpoints
must report them, system and span metrics must arrive downstream through the metrics pipeline
(an OTLP sink and the Prometheus pull exporter), and a service that stops sending goes stale.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client.parser import text_string_to_metric_families

from gateway.otlp.batch import Signal
from tests.support.gateway_process import GatewayProcess
from tests.support.otlp_sink import OtlpSink
from tests.support.ports import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]  # the defaults
ORDERS_MS = [i % 100 + 1 for i in range(200)]  # 1..100 ms, twice
ORDERS_ERRORS = {i for i in range(200) if i % 10 == 0}  # 10 %
SYSTEM_METRICS = {
    "system.cpu.utilization": {"cpu.mode"},
    "system.memory.usage": {"system.memory.state"},
    "system.memory.utilization": {"system.memory.state"},
    "system.filesystem.usage": {"system.device", "system.filesystem.mountpoint",
                                "system.filesystem.type", "system.filesystem.state"},
    "system.filesystem.utilization": {"system.device", "system.filesystem.mountpoint",
                                      "system.filesystem.type"},
    "system.network.io": {"network.interface.name", "network.io.direction"},
    "process.cpu.utilization": set(),
    "process.memory.usage": set(),
    "process.thread.count": set(),
    "process.unix.file_descriptor.count": set(),
}  # fmt: skip


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(q * len(ordered)) - 1]


def send_server_spans(endpoint: str, service: str, millis: list[int], errors: set[int]) -> None:
    """SERVER spans with exact durations, sent by the SDK's OTLP/HTTP exporter."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    tracer = provider.get_tracer("e2e.health")
    start = time.time_ns() - 60 * 1_000_000_000
    try:
        for i, ms in enumerate(millis):
            span = tracer.start_span(f"GET /{service}", kind=SpanKind.SERVER, start_time=start)
            if i in errors:
                span.set_status(Status(StatusCode.ERROR, "boom"))
            span.end(end_time=start + ms * 1_000_000)
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()


def wait_until(check: Callable[[], Any], timeout: float = 30.0, every: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(every)


def attrs(items) -> dict[str, str]:
    return {kv.key: kv.value.string_value for kv in items}


def latest_metrics(sink: OtlpSink, service: str) -> dict[str, Any]:
    """The newest copy of each metric the sink received from ``service``'s resource."""
    found: dict[str, Any] = {}
    for received in sink.received:
        if received.signal is not Signal.METRICS:
            continue
        for rm in received.request.resource_metrics:  # type: ignore[union-attr]
            resource = attrs(rm.resource.attributes)
            if resource.get("service.name") == service:
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        found[metric.name] = (resource, metric)
    return found


@pytest.fixture
def gateway(sink: OtlpSink, start_gateway) -> tuple[GatewayProcess, str]:
    """The gateway and its OTLP/HTTP base URL."""
    http_port = free_port()
    config = {
        "receivers": {
            "otlp": {"protocols": {"http": {"endpoint": f"127.0.0.1:{http_port}"}}},
            "hostmetrics": {"collection_interval": "1s"},
        },
        "processors": {"spanmetrics": {"flush_interval": "1s"}},
        "exporters": {
            "otlp/sink": {"endpoint": sink.http_endpoint, "protocol": "http/protobuf"},
            "file/traces": {"path": "data/traces.jsonl"},
            "prometheus": {},
        },
        "service": {
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["spanmetrics"],
                    "exporters": ["otlp/sink", "file/traces"],
                },
                "metrics": {
                    "receivers": ["otlp", "hostmetrics"],
                    "exporters": ["otlp/sink", "prometheus"],
                },
            },
            "shutdown_timeout": "5s",
        },
        "health": {
            "cache_ttl": "200ms",
            "thresholds": {
                "error_rate_degraded": 0.05,
                "error_rate_unhealthy": 0.25,
                "stale_after": "3s",
            },
            "services": {"orders": {"stale_after": "10m"}},
        },
    }
    return start_gateway(config), f"http://127.0.0.1:{http_port}"


def test_health_system_metrics_and_span_metrics_end_to_end(gateway, sink):
    process, otlp_http = gateway
    admin = process.admin_url
    traces_url = f"{otlp_http}/v1/traces"
    send_server_spans(traces_url, "billing", [20] * 5, set())
    send_server_spans(traces_url, "orders", ORDERS_MS, ORDERS_ERRORS)

    def orders_health() -> dict[str, Any] | None:
        response = httpx.get(f"{admin}/health/services/orders", timeout=5)
        body = response.json() if response.status_code == 200 else None
        return body if body and body["requests"] == len(ORDERS_MS) else None

    orders = wait_until(orders_health)
    assert orders, "orders never reached 200 requests in /health/services/orders"
    print("\nGET /health/services/orders ->\n" + json.dumps(orders, indent=2))
    assert orders["status"] == "degraded"  # 10 % errors: >= 5 %, < 25 %
    assert orders["errors"] == 20 and orders["error_rate"] == pytest.approx(0.10)
    assert orders["reasons"] == ["error rate 10.0% >= 5.0%"]
    seconds = [ms / 1000 for ms in ORDERS_MS]
    for q in ("p50", "p95", "p99"):
        exact = nearest_rank(seconds, int(q[1:]) / 100)
        assert orders["latency"][q] == pytest.approx(exact, rel=0.02), q  # the documented 2 %
    assert orders["request_rate"] == pytest.approx(200 / orders["window_seconds"])
    assert orders["thresholds"]["stale_after"] == 600

    # billing stopped sending: stale once (and only once) nothing arrived for 3 s.
    observed: list[tuple[float, str]] = []

    def billing_stale() -> bool:
        body = httpx.get(f"{admin}/health/services/billing", timeout=5).json()
        observed.append((body["seconds_since_seen"], body["status"]))
        return body["status"] == "stale"

    assert wait_until(billing_stale, timeout=20), observed
    for since, status in observed:
        assert (status == "stale") == (since > 3.0), observed
    assert httpx.get(f"{admin}/health/services/nobody", timeout=5).status_code == 404

    # /health: system resources, exporters, components and the services summary.
    response = httpx.get(f"{admin}/health", timeout=5)
    health = response.json()
    print("\nGET /health ->\n" + json.dumps(health, indent=2))
    assert response.status_code == 200
    # Host CPU is informational (other tests saturating this machine never degrade the
    # gateway); only the gateway's own process keeping a core busy can.
    assert health["status"] in ("healthy", "degraded"), health["reasons"]
    reasons = health["reasons"]
    assert all(r.startswith("gateway event loop CPU at") for r in reasons), reasons
    assert (health["system"]["process"]["cpu_status"] == "healthy") == (not reasons)
    assert {e["name"]: e["status"] for e in health["exporters"]} == {
        "otlp/sink": "ok", "file/traces": "ok", "prometheus": "ok"
    }  # fmt: skip
    system = health["system"]
    assert 0 <= system["cpu"]["utilization"] <= 1 and system["memory"]["total_bytes"] > 0
    holding = [fs for fs in system["filesystems"] if fs["holds"]]
    assert [fs["holds"] for fs in holding] == [[str(process.workdir / "data")]]
    assert health["services"]["degraded"] == 1 and health["services"]["stale"] == 1
    assert health["services"]["attention"] == ["orders", "billing"]
    receivers = {r["name"]: r["status"] for r in health["components"]["receivers"]}
    assert receivers == {"otlp": "ok", "hostmetrics": "ok"}

    # Downstream: system metrics and span metrics came through the metrics pipeline.
    def got_all() -> dict[str, Any] | None:
        found = latest_metrics(sink, "otelgate")
        calls = found.get("traces.span.metrics.calls")
        done = (
            calls
            and sum(
                p.as_int
                for p in calls[1].sum.data_points
                if attrs(p.attributes)["service.name"] == "orders"
            )
            == 200
        )
        return found if done and set(SYSTEM_METRICS) <= set(found) else None  # fmt: skip

    found = wait_until(got_all)
    assert found, f"missing downstream: {sorted(latest_metrics(sink, 'otelgate'))}"
    for name, keys in SYSTEM_METRICS.items():
        resource, metric = found[name]
        assert resource["service.instance.id"] == health["instance_id"]
        points = getattr(metric, metric.WhichOneof("data")).data_points
        assert points and all(set(attrs(p.attributes)) == keys for p in points), name
    _, calls = found["traces.span.metrics.calls"]
    _, duration = found["traces.span.metrics.duration"]
    by_status = {
        attrs(p.attributes)["status.code"]: p.as_int
        for p in calls.sum.data_points
        if attrs(p.attributes)["service.name"] == "orders"
    }
    assert by_status == {"STATUS_CODE_UNSET": 180, "STATUS_CODE_ERROR": 20}
    [error_hist] = [
        p for p in duration.histogram.data_points
        if attrs(p.attributes) == {"service.name": "orders", "span.name": "GET /orders",
                                   "span.kind": "SPAN_KIND_SERVER",
                                   "status.code": "STATUS_CODE_ERROR"}
    ]  # fmt: skip
    error_ms = [ORDERS_MS[i] for i in sorted(ORDERS_ERRORS)]  # 1, 11, 21, ... 91 ms, twice
    bounds = zip([0.0, *BUCKETS], [*BUCKETS, math.inf], strict=True)
    expected = [sum(1 for ms in error_ms if low < ms / 1000 <= high) for low, high in bounds]
    assert list(error_hist.explicit_bounds) == BUCKETS
    assert list(error_hist.bucket_counts) == expected
    assert error_hist.sum == pytest.approx(sum(error_ms) / 1000)

    # ... and in the Prometheus exposition, under the names the SLO rules use.
    text = httpx.get(f"{admin}/metrics/otlp", timeout=5).text
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]

    def sample(name: str, **labels: str) -> float | None:
        for s in samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
        return None

    orders_errors = {
        "service_name": "orders",
        "span_name": "GET /orders",
        "span_kind": "SPAN_KIND_SERVER",
        "status_code": "STATUS_CODE_ERROR",
    }
    assert sample("traces_span_metrics_calls_total", job="otelgate", **orders_errors) == 20
    assert sample("traces_span_metrics_duration_seconds_count", **orders_errors) == 20
    assert sample("traces_span_metrics_duration_seconds_bucket", le="0.025", **orders_errors) == 6
    assert sample("traces_span_metrics_duration_seconds_bucket", le="+Inf", **orders_errors) == 20
    assert sample("system_memory_usage_bytes", system_memory_state="used") is not None
    assert sample("system_network_io_bytes_total", network_io_direction="receive") is not None
    assert sample("system_cpu_utilization_ratio", cpu_mode="idle") is not None
