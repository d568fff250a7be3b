"""SLOs end to end: the real gateway counts spans the OpenTelemetry SDK sends, serves /slo and
the SLO gauges, keeps its numbers across restarts, and a real Prometheus evaluates the rules
``otelgate slo-rules`` generates over the span metrics of two gateways."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.support.gateway_process import GatewayProcess, otelgate_command
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e

SLOS = [
    {"name": "orders-availability", "service": "orders", "objective": 0.9,
     "sli": {"availability": None}},
    {"name": "orders-latency", "service": "orders", "objective": 0.95,
     "sli": {"latency": {"threshold": "250ms"}}},
]  # fmt: skip


def send_spans(gateway: GatewayProcess, service: str, spans: list[tuple[SpanKind, bool, float]]):
    """Send ``(kind, error, duration_seconds)`` spans with the OTel SDK's OTLP/HTTP exporter."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=f"{gateway.http_endpoint}/v1/traces", timeout=10)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("slo-e2e")
    start = time.time_ns()
    for kind, error, seconds in spans:
        span = tracer.start_span("GET /orders", kind=kind, start_time=start)
        if error:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=start + round(seconds * 1e9))
    assert provider.force_flush(30_000)
    provider.shutdown()


def server(count: int, error: bool = False, seconds: float = 0.1) -> list[Any]:
    return [(SpanKind.SERVER, error, seconds)] * count


def get_slo(gateway: GatewayProcess, name: str) -> dict[str, Any]:
    response = httpx.get(f"{gateway.admin_url}/slo/{name}", timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def stored_total(db: Path, slo: str) -> float:
    """What the gateway has written to its store so far (read-only, from the test)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT SUM(total) FROM slo_buckets WHERE slo = ?", (slo,)).fetchone()
    return float(row[0] or 0)


def test_slo_endpoints_gauges_and_restarts(
    start_gateway: Callable[..., GatewayProcess], tmp_path: Path
):
    db = tmp_path / "store" / "otelgate.db"
    config = {
        "exporters": {"file": {"path": "traces.jsonl"}},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file"]}}},
        "store": {"path": str(db), "flush_interval": "1s"},
        "slos": SLOS,
    }
    gateway = start_gateway(config)
    # 200 SERVER spans of orders: 12 errors; 150 take 100ms, 30 take 240ms, 20 take 400ms.
    spans = server(138) + server(12, error=True) + server(30, seconds=0.24)
    spans += server(20, seconds=0.4)
    spans += [(SpanKind.CLIENT, True, 2.0)] * 10  # not SERVER spans: not counted
    send_spans(gateway, "orders", spans)
    send_spans(gateway, "payments", server(5, error=True))  # another service

    availability = get_slo(gateway, "orders-availability")
    print("\nGET /slo/orders-availability:\n" + json.dumps(availability, indent=2))
    # SLI 188/200 = 0.94; error rate 0.06 / budget 0.1 = burn rate 0.6 in every window.
    assert availability["window"] == "30d" and availability["sli_kind"] == "availability"
    five = availability["windows"]["5m"]
    assert (five["good"], five["total"]) == (188, 200)
    assert availability["sli"] == pytest.approx(0.94)
    assert availability["burn_rates"] == pytest.approx(
        dict.fromkeys(["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"], 0.6)
    )
    # Budget: 10% of 200 = 20 bad events allowed, 12 spent, 8 left (60% consumed).
    assert availability["error_budget"] == pytest.approx(
        {"total": 20, "consumed": 12, "remaining": 8, "consumed_ratio": 0.6,
         "remaining_ratio": 0.4}
    )  # fmt: skip
    assert availability["alert_state"] == {"page": False, "ticket": False}
    assert availability["status"] == "ok"

    latency = get_slo(gateway, "orders-latency")
    # 180 of 200 within 250ms: SLI 0.9, error 0.1 / budget 0.05 = burn 2.0: only the 1x
    # ticket condition (3d and 6h) fires.
    assert latency["sli"] == pytest.approx(0.9)
    assert latency["burn_rates"]["1h"] == pytest.approx(2.0)
    assert latency["error_budget"]["consumed"] == pytest.approx(20)
    assert latency["error_budget"]["remaining_ratio"] == pytest.approx(-1.0)
    assert [a["firing"] for a in latency["alerts"]] == [False, False, False, True]
    assert latency["alert_state"] == {"page": False, "ticket": True}
    assert latency["status"] == "ticket"

    listing = httpx.get(f"{gateway.admin_url}/slo", timeout=10).json()
    assert [s["name"] for s in listing["slos"]] == ["orders-availability", "orders-latency"]
    assert httpx.get(f"{gateway.admin_url}/slo/nope", timeout=10).status_code == 404

    assert gateway.metric("otelgate_slo_sli", slo="orders-availability", window="5m") == (
        pytest.approx(0.94)
    )
    assert gateway.metric("otelgate_slo_burn_rate", slo="orders-latency", window="3d") == (
        pytest.approx(2.0)
    )
    assert gateway.metric(
        "otelgate_slo_error_budget_remaining_ratio", slo="orders-availability"
    ) == (pytest.approx(0.4))
    assert gateway.metric("otelgate_slo_objective_ratio", slo="orders-latency") == 0.95
    assert gateway.metric("otelgate_slo_alert", slo="orders-latency", severity="ticket") == 1
    assert gateway.metric("otelgate_slo_alert", slo="orders-latency", severity="page") == 0

    # A clean restart with the same store: the numbers continue.
    assert gateway.stop() == 0
    gateway = start_gateway(config)
    again = get_slo(gateway, "orders-availability")
    assert (again["windows"]["30d"]["good"], again["windows"]["30d"]["total"]) == (188, 200)
    assert again["error_budget"] == availability["error_budget"]
    send_spans(gateway, "orders", server(92) + server(8, error=True))
    after = get_slo(gateway, "orders-availability")
    # 280 good of 300: SLI 0.9333; 20 bad of 30 allowed; burn (20/300)/0.1 = 0.6667.
    assert (after["windows"]["30d"]["good"], after["windows"]["30d"]["total"]) == (280, 300)
    assert after["error_budget"]["remaining"] == pytest.approx(10)
    assert after["burn_rates"]["5m"] == pytest.approx(2 / 3)

    # A crash (SIGKILL) loses nothing already flushed: wait for the flush, then kill.
    send_spans(gateway, "orders", server(10, error=True))
    deadline = time.monotonic() + 30
    while stored_total(db, "orders-availability") < 310 and time.monotonic() < deadline:
        time.sleep(0.2)
    gateway.kill()
    gateway = start_gateway(config)
    crashed = get_slo(gateway, "orders-availability")
    assert (crashed["windows"]["30d"]["good"], crashed["windows"]["30d"]["total"]) == (280, 310)
    assert gateway.metric("otelgate_slo_sli", slo="orders-availability", window="1h") == (
        pytest.approx(280 / 310)
    )


# -- Prometheus evaluating the generated rules over two gateways --------------------------

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def prom_query(url: str, query: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=10)
    assert response.status_code == 200, response.text
    return list(response.json()["data"]["result"])


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[list[str], Path], str]]:
    """Start Prometheus scraping ``targets`` (their /metrics/otlp) with a rule file."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(targets: list[str], rules: Path) -> str:
        port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [{
                "job_name": "otelgate", "honor_labels": True, "metrics_path": "/metrics/otlp",
                "static_configs": [{"targets": targets}],
            }],
        }  # fmt: skip
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        log = (tmp_path / "prometheus.log").open("wb")
        procs.append(subprocess.Popen(
            [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
             "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT,
        ))  # fmt: skip
        log.close()
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            if procs[-1].poll() is not None:
                raise AssertionError((tmp_path / "prometheus.log").read_text())
            try:
                return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("Prometheus to be ready", ready)
        return url

    try:
        yield start
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@pytest.mark.timeout(300)
def test_prometheus_evaluates_generated_rules_across_gateways(
    start_gateway: Callable[..., GatewayProcess],
    prometheus: Callable[[list[str], Path], str],
    tmp_path: Path,
):
    slos = [{**SLOS[0], "objective": 0.99}, SLOS[1]]
    config = {
        "processors": {"spanmetrics": {"flush_interval": "500ms"}},
        "exporters": {"file": {"path": "traces.jsonl"}, "prometheus": {}},
        "service": {"pipelines": {
            "traces": {"receivers": ["otlp"], "processors": ["spanmetrics"], "exporters": ["file"]},
            "metrics": {"receivers": ["otlp"], "exporters": ["prometheus"]},
        }},
        "slos": slos,
    }  # fmt: skip
    a, b = start_gateway(config), start_gateway(config)
    rules = tmp_path / "slo-rules.yaml"
    generated = subprocess.run(
        [*otelgate_command(), "slo-rules", "--config", str(a.config_path), "-o", str(rules)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert generated.returncode == 0, generated.stderr
    url = prometheus([f"127.0.0.1:{a.admin_port}", f"127.0.0.1:{b.admin_port}"], rules)

    # Per round: gateway a gets 10 spans (1 error, 2 slower than 250ms), gateway b 30 spans
    # (1 error, 3 slow). Together: errors 2/40 = 0.05, slow 5/40 = 0.125. (Averaging the
    # gateways' own ratios would give 0.067 and 0.15.)
    def send_round(times: int = 1) -> None:
        send_spans(a, "orders", (server(7) + server(1, True) + server(2, seconds=0.4)) * times)
        send_spans(b, "orders", (server(26) + server(1, True) + server(3, seconds=0.4)) * times)

    # rate() counts increases between samples, so first every series gets a baseline that is
    # as large as what follows (a small one changes how far Prometheus extrapolates a series).
    rounds = 3
    send_round(rounds)
    calls = 'traces_span_metrics_calls_total{service_name="orders"}'
    wait_for("4 call series", lambda: len(prom_query(url, calls)) == 4)
    time.sleep(2.5)  # a few more scrapes of the baseline
    for _ in range(rounds):
        send_round()
        time.sleep(1)
    total = 2 * rounds * 40

    def complete() -> bool:
        result = prom_query(url, f"sum({calls})")
        return bool(result) and float(result[0]["value"][1]) == total

    wait_for(f"{total} calls in Prometheus", complete)
    complete_at = time.time()

    def recorded(query: str) -> float | None:
        result = prom_query(url, query)
        if len(result) == 1 and float(result[0]["value"][0]) > complete_at + 2:
            return float(result[0]["value"][1])
        return None

    availability = wait_for(
        "the 5m availability SLI",
        lambda: recorded('slo:sli_error:ratio_rate5m{sloth_slo="orders-availability"}'),
    )
    latency = wait_for(
        "the 5m latency SLI",
        lambda: recorded('slo:sli_error:ratio_rate5m{sloth_slo="orders-latency"}'),
    )
    period = wait_for(
        "the 30d SLI",
        lambda: recorded('slo:sli_error:ratio_rate30d{sloth_slo="orders-availability"}'),
    )
    burn = wait_for(
        "the current burn rate",
        lambda: recorded('slo:current_burn_rate:ratio{sloth_slo="orders-availability"}'),
    )
    print(
        f"\nPrometheus: availability error ratio {availability:.4f} (fed 0.05), latency error "
        f"ratio {latency:.4f} (fed 0.125), 30d {period:.4f}, burn rate {burn:.2f}"
    )
    # rate() extrapolates each gateway's series over its own sample span (they differ by up to
    # a scrape interval), hence the tolerance; it still tells 0.05 apart from 0.067.
    assert availability == pytest.approx(0.05, rel=0.1)
    assert latency == pytest.approx(0.125, rel=0.1)
    assert period == pytest.approx(0.05, rel=0.1)
    assert burn == pytest.approx(5.0, rel=0.1)  # 0.05 / (1 - 0.99)
    objective = prom_query(url, 'slo:objective:ratio{sloth_slo="orders-availability"}')
    assert float(objective[0]["value"][1]) == 0.99

    # Burn 5x: the 3x ticket fires (2h and 1d), neither page (14.4x, 6x); latency burns 2.5x:
    # only the 1x ticket.
    def firing() -> set[tuple[str, str]]:
        alerts = prom_query(url, 'ALERTS{alertstate="firing"}')
        return {(x["metric"]["sloth_slo"], x["metric"]["sloth_severity"]) for x in alerts}

    wait_for("alerts", lambda: len(firing()) == 2)
    assert firing() == {("orders-availability", "ticket"), ("orders-latency", "ticket")}
