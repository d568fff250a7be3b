"""``otelgate run --workers 2`` keeps one view of state: the same input, sent by real
OpenTelemetry SDK clients over many short-lived connections (OTLP/HTTP and OTLP/gRPC), gives
the same service health, SLOs, alerts and span metrics as one process.

Both gateways run at the same time and get the same spans (one SDK provider exports every
batch to both), so their numbers must be equal, not merely close. The gateway process
started with ``--workers``, its worker slots and the ``launch`` fixture are in
tests/support/workers.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogs
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetrics,
)
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.e2e.conftest import forward_config
from tests.support.gateway_process import GatewayProcess
from tests.support.otlp_sink import OtlpSink
from tests.support.workers import (
    WorkersGateway,
    accepted_items,
    exposition,
    span_exporter,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


# --- the same input, one process and two workers --------------------------------------------

#: service -> every n-th SERVER span has status ERROR (0: none)
SERVICES = {"checkout": 10, "payments": 5, "catalog": 0}
BATCHES = 20  # per service; each one a fresh provider and exporter (a fresh connection)
SPANS = 6  # SERVER spans per batch (plus one INTERNAL span, not a request)
DURATIONS_MS = (3, 7, 12, 25, 48, 90, 140, 260, 420, 900)
CONFIG: dict[str, Any] = {
    "processors": {"spanmetrics": {"flush_interval": "500ms"}},
    "exporters": {
        "file/traces": {"path": "traces.jsonl"},
        "file/logs": {"path": "logs.jsonl"},
        "prometheus": {},
    },
    "service": {
        "pipelines": {
            "traces": {"receivers": ["otlp"], "processors": ["spanmetrics"],
                       "exporters": ["file/traces"]},
            "metrics": {"receivers": ["otlp"], "exporters": ["prometheus"]},
            "logs": {"receivers": ["otlp"], "exporters": ["file/logs"]},
        },
        "shutdown_timeout": "5s",
    },
    "slos": [
        {"name": "checkout-availability", "service": "checkout", "objective": 0.95,
         "sli": {"availability": None}},
        {"name": "checkout-latency", "service": "checkout", "objective": 0.9,
         "sli": {"latency": {"threshold": "100ms"}}},
    ],
    "alerting": {
        "evaluation_interval": "300ms",
        "default_rules": {"enabled": False},
        "rules": [
            {"name": "WorkersErrorRate", "service": "*", "for": "0s", "severity": "critical",
             "condition": {"error_rate": {"above": 0.05, "min_requests": 5}}},
        ],
    },
}  # fmt: skip


class Tee(SpanExporter):
    """Exports every batch to several SDK exporters; fails when one of them does."""

    def __init__(self, exporters: list[SpanExporter]) -> None:
        self.exporters = exporters
        self.results: list[SpanExportResult] = []

    def export(self, spans: Any) -> SpanExportResult:
        results = [e.export(spans) for e in self.exporters]
        self.results += results
        ok = all(r is SpanExportResult.SUCCESS for r in results)
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        for exporter in self.exporters:
            exporter.shutdown()


def send_batch(targets: list[GatewayProcess], service: str, batch: int, base_ns: int) -> bool:
    """One short-lived SDK client: ``SPANS`` SERVER spans with fixed times and statuses, over
    gRPC for odd batches and HTTP for even ones, exported to every target, then shut down."""
    tee = Tee([span_exporter(g, grpc=batch % 2 == 1) for g in targets])
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(tee, max_export_batch_size=512))
    tracer = provider.get_tracer("e2e.workers")
    every = SERVICES[service]
    for i in range(SPANS):
        n = batch * SPANS + i
        start = base_ns + n * 1_000_000
        span = tracer.start_span(f"GET /{service}", kind=SpanKind.SERVER, start_time=start)
        if every and n % every == 0:
            span.set_status(Status(StatusCode.ERROR, "boom"))
        span.end(end_time=start + DURATIONS_MS[n % len(DURATIONS_MS)] * 1_000_000)
    inner = tracer.start_span("render", kind=SpanKind.INTERNAL, start_time=base_ns)
    inner.end(end_time=base_ns + 5_000_000_000)  # 5 s, not a request: never in latencies
    provider.shutdown()
    return bool(tee.results) and all(r is SpanExportResult.SUCCESS for r in tee.results)


def send_logs_and_metric(targets: list[GatewayProcess], service: str) -> None:
    """A few logs (one error) and a counter from ``service``, to every target."""
    resource = Resource.create({"service.name": service})
    logs = LoggerProvider(resource=resource)
    for gateway in targets:
        exporter = HttpLogs(endpoint=f"{gateway.http_endpoint}/v1/logs", timeout=10)
        logs.add_log_record_processor(BatchLogRecordProcessor(exporter))
    logger = logging.getLogger(f"e2e.workers.{service}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(logger_provider=logs)
    logger.addHandler(handler)
    for i in range(3):
        logger.info("request %d served", i)
    logger.error("cache unavailable")
    logger.removeHandler(handler)
    logs.shutdown()
    readers = [
        PeriodicExportingMetricReader(
            HttpMetrics(endpoint=f"{g.http_endpoint}/v1/metrics", timeout=10),
            export_interval_millis=3_600_000,
        )
        for g in targets
    ]
    meters = MeterProvider(resource=resource, metric_readers=readers)
    meters.get_meter("e2e.workers").create_counter("orders_placed").add(7, {"shop": "web"})
    meters.shutdown()  # the readers' last collection goes out now


def service_numbers(gateway: GatewayProcess, name: str) -> dict[str, Any]:
    body = httpx.get(f"{gateway.admin_url}/health/services/{name}", timeout=5).json()
    keys = ("requests", "errors", "error_rate", "latency")
    return {k: body.get(k) for k in keys} | {"signals": sorted(body.get("signals", {}))}


def counted(gateway: GatewayProcess, name: str, requests: int) -> dict[str, Any] | None:
    """``service_numbers`` once the service's ``requests`` have all been counted and its logs
    and metric seen (None if they never are)."""

    def check() -> dict[str, Any] | None:
        numbers = service_numbers(gateway, name)
        done = numbers["requests"] == requests and len(numbers["signals"]) == 3
        return numbers if done else None

    return wait_until(check, 10)


def slo_numbers(gateway: GatewayProcess) -> list[dict[str, Any]]:
    slos = httpx.get(f"{gateway.admin_url}/slo", timeout=5).raise_for_status().json()["slos"]
    keys = ("name", "sli", "windows", "burn_rates", "error_budget", "alert_state", "status")
    return [{k: slo.get(k) for k in keys} for slo in slos]


def firing(gateway: GatewayProcess) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    alerts = httpx.get(f"{gateway.admin_url}/alerts", timeout=5).raise_for_status().json()
    return {
        (a["rule"], tuple(sorted(a["labels"].items())))
        for a in alerts["alerts"]
        if a["state"] == "firing"
    }


def span_calls(gateway: GatewayProcess) -> dict[tuple[tuple[str, str], ...], float]:
    """``traces_span_metrics_calls_total`` of ``/metrics/otlp``, one value per label set."""
    return {
        labels: value
        for (name, labels), value in exposition(gateway, "/metrics/otlp").items()
        if name == "traces_span_metrics_calls_total"
    }


def server_calls(calls: dict[tuple[tuple[str, str], ...], float]) -> dict[str, float]:
    """Calls of SERVER spans per service."""
    found: dict[str, float] = {}
    for labels, value in calls.items():
        named = dict(labels)
        if named.get("span_kind") == "SPAN_KIND_SERVER":
            service = named.get("service_name", "?")
            found[service] = found.get(service, 0.0) + value
    return found


def test_two_workers_answer_what_one_process_answers(
    launch: Callable[..., WorkersGateway],
) -> None:
    single = launch(CONFIG)
    workers = launch(CONFIG, "--workers", "2")
    targets: list[GatewayProcess] = [single, workers]
    base_ns = time.time_ns() - 2_000_000_000
    jobs = [(s, b) for b in range(BATCHES) for s in SERVICES]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda job: send_batch(targets, job[0], job[1], base_ns), jobs))
        list(pool.map(lambda s: send_logs_and_metric(targets, s), SERVICES))
    print(f"\n{len(jobs)} SDK clients per gateway sent in {time.monotonic() - started:.1f}s")
    assert all(results), "an SDK export failed"

    # Both workers took part (the kernel spread the connections over them).
    def both_received() -> list[int] | None:
        accepted = [s["accepted_items"].get("traces", 0) for s in workers.slots()]
        return accepted if sum(accepted) == len(jobs) * (SPANS + 1) else None

    accepted = wait_until(both_received, 10)
    print(f"spans accepted per worker: {accepted}")
    assert accepted and all(n > 0 for n in accepted), workers.slots()

    # Service health: every request counted once, the same latencies.
    expected = BATCHES * SPANS
    for name in SERVICES:
        numbers = [counted(g, name, expected) for g in targets]
        print(f"{name}: {numbers[1]}")
        assert numbers[0] and numbers[0] == numbers[1], name
        assert numbers[0]["signals"] == ["logs", "metrics", "traces"]
    assert service_numbers(single, "checkout")["errors"] == BATCHES * SPANS // 10

    # SLOs.
    slos = [slo_numbers(g) for g in targets]
    assert slos[0] == slos[1]
    assert slos[0][0]["windows"]["5m"]["total"] == expected

    # Alerts: the error rate rule fires for the two failing services, the same in both.
    wanted = {
        ("WorkersErrorRate", (("alertname", "WorkersErrorRate"), ("service", s),
                              ("severity", "critical")))
        for s in ("checkout", "payments")
    }  # fmt: skip

    def fires(gateway: GatewayProcess) -> bool:
        return firing(gateway) == wanted

    assert all(wait_until(partial(fires, g), 10) for g in targets), [firing(g) for g in targets]

    # Span metrics through the Prometheus exporter: one series per label set, same counts.
    want_calls = dict.fromkeys(SERVICES, float(expected))

    def flushed(gateway: GatewayProcess) -> bool:
        return server_calls(span_calls(gateway)) == want_calls

    assert all(wait_until(partial(flushed, g), 10) for g in targets), [
        server_calls(span_calls(g)) for g in targets
    ]
    assert span_calls(single) == span_calls(workers)

    # The gateway's own metrics: merged over the processes (one series each), same totals.
    assert wait_until(lambda: accepted_items(single) == accepted_items(workers), 5), [
        accepted_items(g) for g in targets
    ]
    own = exposition(workers, "/metrics")
    for index in ("0", "1"):
        assert own[("otelgate_worker_up", (("worker", index),))] == 1
    assert own[("otelgate_workers", (("state", "running"),))] == 2


def test_forwarding_workers_send_the_supervisor_only_what_it_needs(
    launch: Callable[..., WorkersGateway], sink: OtlpSink
) -> None:
    """A forwarding pipeline runs in the workers; service health is counted there; the
    supervisor gets only the batch that holds an exception (for error groups)."""
    config = forward_config(sink) | {"health": {"cache_ttl": 0}}
    gateway = launch(config, "--workers", "2")
    for i in range(20):  # fresh connections: both workers take some
        provider = TracerProvider(resource=Resource.create({"service.name": "orders"}))
        provider.add_span_processor(BatchSpanProcessor(span_exporter(gateway, grpc=i % 2 == 1)))
        with provider.get_tracer("t").start_as_current_span("GET /o", kind=SpanKind.SERVER):
            pass
        provider.shutdown()
    provider = TracerProvider(resource=Resource.create({"service.name": "orders"}))
    provider.add_span_processor(BatchSpanProcessor(span_exporter(gateway, grpc=False)))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("POST /o", kind=SpanKind.SERVER) as span:
        span.record_exception(ValueError("card declined"))
        span.set_status(Status(StatusCode.ERROR))
    provider.shutdown()
    assert sink.wait_for(lambda s: len(s.spans()) == 21, 10), len(sink.spans())
    health = wait_until(
        lambda: (n := service_numbers(gateway, "orders"))["requests"] == 21 and n, 10
    )
    assert health and health["errors"] == 1, service_numbers(gateway, "orders")
    groups = wait_until(lambda: httpx.get(f"{gateway.admin_url}/errors", timeout=5).json(), 10)
    assert [g["type"] for g in groups["groups"]] == ["ValueError"], groups

    def relayed() -> dict[str, float]:  # workers report their counters every second
        return {
            dict(labels)["signal"]: value
            for (name, labels), value in exposition(gateway, "/metrics").items()
            if name == "otelgate_worker_relayed_items_total"
        }

    wait_until(lambda: relayed().get("traces"), 5)
    time.sleep(1.5)  # one more report from each worker: nothing else was relayed
    assert relayed()["traces"] == 1, relayed()  # the span with the exception, nothing else
    assert all(s["accepted_items"]["traces"] > 0 for s in gateway.slots()), gateway.slots()
