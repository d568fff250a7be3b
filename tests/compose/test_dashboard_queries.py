"""Every PromQL expression of every dashboard panel, run against a real Prometheus that scrapes
a real gateway fed by OpenTelemetry SDK clients and evaluates the SLO rules `otelgate slo-rules`
makes: each must parse and return data ("no panel shows No data on the demo's traffic").

The gateway runs the compose stack's pipelines (span metrics, hostmetrics, the Prometheus
exporter, Loki and Jaeger exporters, here the Loki look-alike and an OTLP sink) and its SLOs.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind

from tests.compose.grafana_generator import COMPOSE, generated_dashboards, panel_queries
from tests.support.gateway_process import GatewayProcess, otelgate_command
from tests.support.loki_server import LokiServer
from tests.support.otlp_sink import OtlpSink
from tests.support.prometheus_server import PrometheusServer
from tests.support.sdk_traffic import ServiceClient

pytestmark = pytest.mark.e2e

SERVICES = ("frontend", "checkout", "payments")
# What Grafana puts in for its own variables (compose scrapes every 15 s: $__rate_interval is
# 1m there too).
BUILT_IN = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m"}
FAST_RETRY = {"initial_interval": "100ms", "max_interval": "500ms"}
DEADLINE = 75.0  # seconds for every query to return data


def gateway_config(loki: LokiServer, jaeger: OtlpSink) -> dict[str, Any]:
    """compose/otelgate.yaml's pipelines and SLOs, with test endpoints and fast intervals."""
    compose = yaml.safe_load((COMPOSE / "otelgate.yaml").read_text())
    jaeger_settings = {
        "endpoint": jaeger.grpc_endpoint,
        "tls": {"insecure": True},
        "retry_on_failure": FAST_RETRY,
        "sending_queue": {"storage": "disk"},  # the spool panel sees real series
    }

    def pipeline(receivers: list[str], processors: list[str], *exporters: str) -> dict[str, Any]:
        return {"receivers": receivers, "processors": processors, "exporters": list(exporters)}

    return {
        "processors": {
            "resource": compose["processors"]["resource"],
            "spanmetrics": {"flush_interval": "500ms"},
        },
        "exporters": {
            "prometheus": {},
            "loki": {"endpoint": loki.url, "retry_on_failure": FAST_RETRY},
            "jaeger": jaeger_settings,
            # compose's file/traces, in the gateway's working directory: a managed log file.
            "file/traces": {"path": compose["exporters"]["file/traces"]["path"].split("/")[-1]},
        },
        "service": {
            "pipelines": {
                "traces": pipeline(["otlp"], ["resource", "spanmetrics"], "jaeger", "file/traces"),
                "metrics": pipeline(["otlp", "hostmetrics"], ["resource"], "prometheus"),
                "logs": pipeline(["otlp"], ["resource"], "loki"),
            },
            "shutdown_timeout": "5s",
        },
        "slos": compose["slos"],
    }


class Traffic:
    """The demo's traffic from real SDK clients: three services' spans (OTLP/HTTP, and some
    over gRPC) with errors, logs at three levels, a metric, and one undecodable request."""

    def __init__(self, gateway: GatewayProcess) -> None:
        self.gateway = gateway
        self.clients = {name: ServiceClient(gateway.http_endpoint, name) for name in SERVICES}
        resource = Resource.create({"service.name": "frontend"})
        self.grpc = TracerProvider(resource=resource)
        exporter = OTLPSpanExporter(endpoint=gateway.grpc_endpoint, insecure=True, timeout=10)
        self.grpc.add_span_processor(BatchSpanProcessor(exporter))
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(f"{gateway.http_endpoint}/v1/metrics"), export_interval_millis=1000
        )
        self.meters = MeterProvider(metric_readers=[reader], resource=resource)
        self.orders = self.meters.get_meter("e2e.dashboard").create_counter("shop.orders")

    def round(self, number: int) -> None:
        """One second's worth of traffic."""
        frontend, checkout, payments = (self.clients[name] for name in SERVICES)
        frontend.requests(20, failing=1, seconds=0.05)
        frontend.requests(2, route="GET /slow", seconds=0.4)
        checkout.requests(10, failing=1, route="POST /checkout", seconds=0.1)
        payments.requests(10, failing=1, route="POST /charge", seconds=0.03)
        frontend.checkout_trace(payments, f"card declined in round {number}")
        for name, client in self.clients.items():
            client.logger.info("%s handled round %d", name, number)
            client.logger.warning("%s is slow in round %d", name, number)
        tracer = self.grpc.get_tracer("e2e.dashboard.grpc")
        tracer.start_span("GET /grpc", kind=SpanKind.SERVER).end()
        self.orders.add(3, {"shop.item": "book"})
        for client in self.clients.values():
            client.flush()
        self.grpc.force_flush()
        # Refusals: an undecodable request (counted by reason).
        httpx.post(f"{self.gateway.http_endpoint}/v1/logs", content=b"\xff not protobuf",
                   headers={"content-type": "application/x-protobuf"}, timeout=10)  # fmt: skip

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        self.grpc.shutdown()
        self.meters.shutdown()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[GatewayProcess, PrometheusServer, LokiServer]]:
    """The Loki look-alike, an OTLP sink for Jaeger, the gateway and a Prometheus with the
    SLO rules; all stopped afterwards."""
    with LokiServer() as loki, OtlpSink() as jaeger:
        (tmp_path / "gateway").mkdir()
        gateway = GatewayProcess(gateway_config(loki, jaeger), tmp_path / "gateway")
        gateway.config["receivers"]["hostmetrics"] = {"collection_interval": "1s"}
        gateway.config_path.write_text(yaml.safe_dump(gateway.config))
        rules = tmp_path / "otelgate-slo-rules.yml"
        generated = subprocess.run(
            [*otelgate_command(), "slo-rules", "--config", str(gateway.config_path),
             "-o", str(rules)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert generated.returncode == 0, generated.stderr
        target = f"127.0.0.1:{gateway.admin_port}"
        prometheus = PrometheusServer(
            tmp_path / "prometheus",
            scrape={"otelgate": (target, "/metrics"), "otelgate-otlp": (target, "/metrics/otlp")},
        )
        config = yaml.safe_load(prometheus.config_path.read_text())
        prometheus.config_path.write_text(yaml.safe_dump({**config, "rule_files": [str(rules)]}))
        with gateway, prometheus:
            yield gateway, prometheus, loki


def instances(expr: str) -> list[str]:
    """``expr`` with Grafana's variables put in: once per service when it uses ``$service``."""
    for name, value in BUILT_IN.items():
        expr = expr.replace(name, value)
    if "$service" not in expr:
        return [expr]
    return [expr.replace("$service", service) for service in SERVICES]


def answer(prometheus: PrometheusServer, expr: str) -> tuple[str, list[Any]]:
    """Prometheus' status and result for an instant query (errors as the status)."""
    response = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    if body.get("status") != "success":
        return f"{body.get('errorType')}: {body.get('error')}", []
    return "success", list(body["data"]["result"])


@pytest.mark.timeout(240)
def test_every_promql_panel_query_returns_data(stack):
    gateway, prometheus, loki = stack
    queries = [q for q in panel_queries(generated_dashboards()) if q.datasource == "prometheus"]
    pending = {(q.where, expr) for q in queries for expr in instances(q.expr)}
    executed = len(pending)
    loki.fail_next(2, status=503)  # retried: the retry panel sees real series
    traffic = Traffic(gateway)
    started = time.monotonic()
    try:
        number = 0
        while pending and time.monotonic() - started < DEADLINE:
            number += 1
            traffic.round(number)
            for key in sorted(pending):
                status, result = answer(prometheus, key[1])
                assert status == "success", f"{key[0]}: {key[1]} does not parse: {status}"
                if result:
                    pending.discard(key)
            time.sleep(1)
    finally:
        traffic.close()
    missing = "\n".join(f"{where}: {expr}" for where, expr in sorted(pending))
    assert not pending, f"no data after {DEADLINE:.0f}s:\n{missing}"

    # The Services and Traces dashboards' variable finds the three services.
    match = {"match[]": "traces_span_metrics_calls_total"}
    url = f"{prometheus.url}/api/v1/label/service_name/values"
    response = httpx.get(url, params=match, timeout=10)
    assert set(SERVICES) <= set(response.json()["data"])
    # The Logs dashboard's stream selector matches what the gateway pushed to Loki.
    pushed = {labels.get("service_name") for labels, _ in loki.entries()}
    assert set(SERVICES) <= pushed
    print(f"\n{len(queries)} PromQL panel queries verified against Prometheus "
          f"({executed} with $service put in for {len(SERVICES)} services), "
          f"all with data after {time.monotonic() - started:.0f}s")  # fmt: skip
    # Every panel drawing from Prometheus had its queries run (none skipped by the walk).
    boards = generated_dashboards().values()
    drawn = {
        (board["title"], panel["title"])
        for board in boards
        for panel in board["panels"]
        if (panel.get("datasource") or {}).get("uid") == "prometheus"
    }
    assert drawn == {(q.dashboard, q.panel) for q in queries}
