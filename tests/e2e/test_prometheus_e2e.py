"""The Prometheus exporters with the real gateway, the OTel Python SDK and a real Prometheus.

1. pull: Prometheus scrapes the gateway's ``/metrics/otlp``; PromQL finds the translated series.
2. remote write: the gateway pushes to Prometheus' remote write receiver (delta temporality
   from the SDK, accumulated by the gateway).
3. outage: the receiver is down ~10 s and restarted on the same port and storage; every
   sample accepted meanwhile arrives. Counts are printed (pytest -s).
4. label collisions: a histogram point with an ``le`` attribute, a summary point with a
   ``quantile`` one and scope attributes, through pull (the real ``promtool check metrics``,
   the OpenMetrics parser, a real scrape) and remote write (a real Prometheus accepts them).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om

from tests.exporters.prometheus.builders import request_of, summary_metric
from tests.support.gateway_process import GatewayProcess
from tests.support.prometheus_server import PrometheusServer, value_of

RESOURCE = {
    "service.name": "checkout",
    "service.namespace": "shop",
    "service.instance.id": "pod-1",
    "deployment.environment": "e2e",
}
FAST_RETRY = {"initial_interval": "200ms", "max_interval": "1s", "max_elapsed_time": 0}


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[..., PrometheusServer]]:
    """Start real Prometheus servers; every one started is stopped after the test."""
    started: list[PrometheusServer] = []

    def start(**options: Any) -> PrometheusServer:
        server = PrometheusServer(tmp_path / f"prometheus{len(started)}", **options)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        try:
            server.stop()
        finally:
            server.kill()


def metrics_config(exporter_id: str, settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "exporters": {exporter_id: settings},
        "service": {
            "pipelines": {"metrics": {"receivers": ["otlp"], "exporters": [exporter_id]}},
            "shutdown_timeout": "5s",
        },
    }


def sdk(gateway: GatewayProcess, delta: bool = False) -> MeterProvider:
    """A MeterProvider exporting OTLP/HTTP to the gateway only when flushed."""
    temporality: dict[type, AggregationTemporality] = (
        {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA}
        if delta
        else {}
    )
    exporter = OTLPMetricExporter(
        endpoint=f"{gateway.http_endpoint}/v1/metrics", preferred_temporality=temporality
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    return MeterProvider(metric_readers=[reader], resource=Resource.create(RESOURCE))


def flush(provider: MeterProvider) -> None:
    assert provider.force_flush(timeout_millis=15_000), "the SDK could not export"


def test_prometheus_scrapes_the_pull_exporter(start_gateway, prometheus):
    gateway = start_gateway(metrics_config("prometheus", {}))
    target = f"127.0.0.1:{gateway.admin_port}"
    server = prometheus(scrape={"otelgate-otlp": (target, "/metrics/otlp")})
    provider = sdk(gateway)
    try:
        meter = provider.get_meter("e2e.meter", "0.3")
        requests = meter.create_counter("app.requests", unit="{request}", description="Calls")
        queue = meter.create_up_down_counter("app.queue.size", unit="{item}")
        memory = meter.create_gauge("app.memory.usage", unit="By")
        duration = meter.create_histogram(
            "app.request.duration", unit="s", explicit_bucket_boundaries_advisory=[0.1, 0.5, 1.0]
        )
        requests.add(3, {"http.route": "/checkout"})
        requests.add(2, {"http.route": "/cart"})
        queue.add(5)
        queue.add(-2)
        memory.set(2048)
        for seconds in (0.05, 0.3, 0.7, 2.0):
            duration.record(seconds, {"http.route": "/checkout"})
        flush(provider)

        counters = server.wait_for('app_requests_total{job="shop/checkout"}', lambda r: len(r) == 2)
        assert value_of(counters, http_route="/checkout") == 3, server.logs()
        assert value_of(counters, http_route="/cart") == 2
        labels = counters[0]["metric"]
        assert labels["instance"] == "pod-1"
        assert labels["otel_scope_name"] == "e2e.meter"
        assert labels["otel_scope_version"] == "0.3"
        assert (
            value_of(server.wait_for('app_queue_size{job="shop/checkout"}'), instance="pod-1") == 3
        )
        assert value_of(server.wait_for("app_memory_usage_bytes")) == 2048
        buckets = server.wait_for(
            'app_request_duration_seconds_bucket{http_route="/checkout"}', lambda r: len(r) == 4
        )
        by_le = {r["metric"]["le"]: float(r["value"][1]) for r in buckets}
        assert by_le == {"0.1": 1, "0.5": 2, "1.0": 3, "+Inf": 4}
        assert value_of(server.wait_for("app_request_duration_seconds_count")) == 4
        assert value_of(server.wait_for("app_request_duration_seconds_sum")) == pytest.approx(3.05)
        info = server.wait_for('target_info{job="shop/checkout",instance="pod-1"}')
        assert value_of(info, deployment_environment="e2e", telemetry_sdk_language="python") == 1
        assert value_of(server.wait_for('up{job="otelgate-otlp"}')) == 1

        requests.add(4, {"http.route": "/checkout"})  # updates reach the next scrape
        flush(provider)
        updated = server.wait_for(
            'app_requests_total{http_route="/checkout"}',
            lambda r: len(r) == 1 and float(r[0]["value"][1]) == 7,
        )
        assert value_of(updated) == 7
        print(f"\n[prometheus pull] series found in Prometheus: counters={len(counters)} "
              f"buckets={len(buckets)} checkout_total=7")  # fmt: skip
    finally:
        provider.shutdown()


def test_remote_write_reaches_prometheus(start_gateway, prometheus):
    server = prometheus(remote_write_receiver=True)
    settings = {"endpoint": server.write_url, "retry_on_failure": FAST_RETRY}
    gateway = start_gateway(metrics_config("prometheusremotewrite", settings))
    provider = sdk(gateway, delta=True)
    try:
        meter = provider.get_meter("e2e.meter", "0.3")
        requests = meter.create_counter("app.requests", unit="{request}")
        queue = meter.create_up_down_counter("app.queue.size", unit="{item}")
        duration = meter.create_histogram(
            "app.request.duration", unit="ms", explicit_bucket_boundaries_advisory=[10, 100]
        )
        requests.add(3, {"http.route": "/checkout"})
        queue.add(4)
        duration.record(5, {"http.route": "/checkout"})
        flush(provider)
        time.sleep(0.05)
        requests.add(4, {"http.route": "/checkout"})  # a second delta: 3 + 4 in Prometheus
        duration.record(50, {"http.route": "/checkout"})
        flush(provider)

        total = server.wait_for(
            'app_requests_total{job="shop/checkout"}',
            lambda r: len(r) == 1 and float(r[0]["value"][1]) == 7,
        )
        assert value_of(total, instance="pod-1", http_route="/checkout") == 7, gateway.logs()
        assert value_of(server.wait_for('app_queue_size{instance="pod-1"}')) == 4
        buckets = server.wait_for(
            "app_request_duration_milliseconds_bucket",
            lambda r: len(r) == 3 and all(float(x["value"][1]) > 0 for x in r),
        )
        by_le = {r["metric"]["le"]: float(r["value"][1]) for r in buckets}
        assert by_le == {"10.0": 1, "100.0": 2, "+Inf": 2}
        assert value_of(server.wait_for("app_request_duration_milliseconds_sum")) == 55
        info = server.wait_for('target_info{job="shop/checkout"}')
        assert value_of(info, deployment_environment="e2e") == 1
        samples = server.wait_for("count_over_time(app_requests_total[10m])")
        print(f"\n[remote write] app_requests_total=7 from two delta exports; samples in "
              f"Prometheus: {value_of(samples):.0f}")  # fmt: skip
        assert value_of(samples) == 2
    finally:
        provider.shutdown()


def test_remote_write_outage_loses_nothing(start_gateway, prometheus):
    server = prometheus(remote_write_receiver=True)
    settings = {"endpoint": server.write_url, "retry_on_failure": FAST_RETRY}
    gateway = start_gateway(metrics_config("prometheusremotewrite", settings))
    provider = sdk(gateway)
    try:
        ticks = provider.get_meter("e2e.meter").create_counter("app.ticks")
        sent = 0

        def export_round() -> None:
            nonlocal sent
            ticks.add(1)
            flush(provider)
            sent += 1

        for _ in range(5):
            export_round()
            time.sleep(0.05)
        before = server.wait_for(
            "app_ticks_total", lambda r: len(r) == 1 and r[0]["value"][1] == "5"
        )
        assert value_of(before) == 5, gateway.logs()

        server.stop()
        outage_started = time.monotonic()
        for _ in range(10):  # accepted by the gateway while Prometheus is down
            export_round()
            time.sleep(1.0)
        outage = time.monotonic() - outage_started
        retries = gateway.metric(
            "otelgate_exporter_retries_total", exporter="prometheusremotewrite"
        )
        assert retries > 0, gateway.logs()

        server.start()  # same port, same storage directory
        server.wait_for(
            "count_over_time(app_ticks_total[30m])",
            lambda r: len(r) == 1 and float(r[0]["value"][1]) >= sent,
            timeout=90,
        )
        time.sleep(1.0)  # anything sent twice or late would show up now
        delivered = server.query("count_over_time(app_ticks_total[30m])")
        last = value_of(server.query("app_ticks_total"))
        accepted = gateway.metric("otelgate_receiver_accepted_items_total", signal="metrics")
        exported = gateway.metric(
            "otelgate_exporter_sent_items_total", exporter="prometheusremotewrite"
        )
        print(
            f"\n[remote write outage {outage:.1f}s] batches sent={sent} "
            f"data points accepted={accepted:.0f} exported={exported:.0f} "
            f"samples in Prometheus={value_of(delivered):.0f} last value={last:.0f} "
            f"retries={retries:.0f}"
        )
        assert value_of(delivered) == sent == 15
        assert last == 15
        assert exported == accepted == 15
        for what in ("failed", "dropped"):
            name = f"otelgate_exporter_{what}_items_total"
            assert gateway.metric(name, exporter="prometheusremotewrite") == 0
    finally:
        provider.shutdown()


# --- label collisions: le / quantile attributes and scope attributes --------------------------

SCOPE_ATTRIBUTES = {"lib.mascot": "gopher", "name": "not the scope name"}


def send_colliding(gateway: GatewayProcess, provider: MeterProvider) -> None:
    """SDK: a histogram point with an ``le`` attribute and a counter, in a scope with
    attributes; raw OTLP (the SDK makes no summaries): a summary with a ``quantile`` one."""
    meter = provider.get_meter("e2e.meter", "0.3", attributes=SCOPE_ATTRIBUTES)
    duration = meter.create_histogram(
        "app.request.duration", unit="s", description="Request time",
        explicit_bucket_boundaries_advisory=[0.1, 0.5, 1.0],
    )  # fmt: skip
    requests = meter.create_counter("app.requests", unit="{request}", description="Calls")
    for seconds in (0.05, 0.3, 0.7, 2.0):
        duration.record(seconds, {"le": "high", "http.route": "/checkout"})
    requests.add(3, {"http.route": "/checkout"})
    flush(provider)
    summary = summary_metric(
        "rpc.time", {0.5: 1.0, 0.99: 3.0}, labels={"quantile": "p50"}, t=time.time_ns()
    )
    request = request_of(summary, scope=("e2e.raw", "1.0"), scope_attributes=SCOPE_ATTRIBUTES)
    response = httpx.post(
        f"{gateway.http_endpoint}/v1/metrics",
        content=request.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def check_colliding_series(server: PrometheusServer) -> None:
    """Prometheus holds every series, with the attribute renamed and the scope labels."""
    buckets = server.wait_for(
        'app_request_duration_seconds_bucket{exported_le="high"}', lambda r: len(r) == 4
    )
    by_le = {r["metric"]["le"]: float(r["value"][1]) for r in buckets}
    assert by_le == {"0.1": 1, "0.5": 2, "1.0": 3, "+Inf": 4}, server.logs()
    assert {r["metric"]["otel_scope_lib_mascot"] for r in buckets} == {"gopher"}
    assert {r["metric"]["otel_scope_name"] for r in buckets} == {"e2e.meter"}
    count = server.wait_for('app_request_duration_seconds_count{exported_le="high"}')
    assert value_of(count) == 4
    quantiles = server.wait_for('rpc_time_seconds{exported_quantile="p50"}', lambda r: len(r) == 2)
    assert {r["metric"]["quantile"]: float(r["value"][1]) for r in quantiles} == {
        "0.5": 1.0,
        "0.99": 3.0,
    }
    assert value_of(server.wait_for('rpc_time_seconds_count{exported_quantile="p50"}')) == 10
    total = server.wait_for('app_requests_total{otel_scope_lib_mascot="gopher"}')
    assert value_of(total, http_route="/checkout") == 3


def test_pull_with_le_quantile_and_scope_attributes_is_valid(start_gateway, prometheus):
    gateway = start_gateway(metrics_config("prometheus", {}))
    target = f"127.0.0.1:{gateway.admin_port}"
    server = prometheus(scrape={"otelgate-otlp": (target, "/metrics/otlp")})
    provider = sdk(gateway)
    try:
        send_colliding(gateway, provider)
        url = f"{gateway.admin_url}/metrics/otlp"
        text = httpx.get(url, timeout=10).text
        promtool = shutil.which("promtool")
        assert promtool, "promtool is not on PATH: .ci/run installs it with prometheus"
        checked = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
        )
        assert (checked.returncode, checked.stderr) == (0, ""), text
        accept = "application/openmetrics-text;version=1.0.0"
        om = httpx.get(url, headers={"Accept": accept}, timeout=10).text
        families = {f.name: f for f in parse_om(om)}  # raises on an invalid exposition
        histogram = families["app_request_duration_seconds"]
        assert all(s.labels["exported_le"] == "high" for s in histogram.samples)
        assert "_created" not in om  # off by default
        check_colliding_series(server)
        assert value_of(server.wait_for('up{job="otelgate-otlp"}')) == 1
        renamed = gateway.metric(
            "otelgate_prometheus_label_conflicts_total", exporter="prometheus", reason="le_renamed"
        )
        print(f"\n[prometheus pull] promtool: ok; OpenMetrics parser: {len(families)} families; "
              f"le renamed on {renamed:.0f} point(s)")  # fmt: skip
        assert renamed == 1
    finally:
        provider.shutdown()


def test_remote_write_with_le_quantile_and_scope_attributes_is_accepted(start_gateway, prometheus):
    server = prometheus(remote_write_receiver=True)
    settings = {"endpoint": server.write_url, "retry_on_failure": FAST_RETRY}
    gateway = start_gateway(metrics_config("prometheusremotewrite", settings))
    provider = sdk(gateway)
    try:
        send_colliding(gateway, provider)
        check_colliding_series(server)
        exporter = "prometheusremotewrite"
        failed = gateway.metric("otelgate_exporter_failed_items_total", exporter=exporter)
        sent = gateway.metric("otelgate_exporter_sent_items_total", exporter=exporter)
        conflicts = {
            reason: gateway.metric(
                "otelgate_prometheus_label_conflicts_total", exporter=exporter, reason=reason
            )
            for reason in ("le_renamed", "quantile_renamed", "scope_attribute_dropped")
        }
        print(f"\n[remote write] sent={sent:.0f} failed={failed:.0f} conflicts={conflicts}")
        assert failed == 0, gateway.logs()
        assert sent == 3  # histogram, counter, summary points
        assert conflicts == {"le_renamed": 1, "quantile_renamed": 1, "scope_attribute_dropped": 3}
        assert gateway.metric("otelgate_exporter_retries_total", exporter=exporter) == 0
    finally:
        provider.shutdown()
