"""The pull exporter: push -> scrape, content negotiation, OpenMetrics details, its route."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporters.prometheus.pull import PrometheusExporter
from gateway.errors import PermanentError
from gateway.otlp.batch import Batch, Signal
from tests.exporters.prometheus.builders import (
    DELTA,
    SEC,
    T0,
    gauge_metric,
    histogram_metric,
    request_of,
    sum_metric,
    summary_metric,
)
from tests.support.otlp_samples import sample_request

OM_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


def samples(text: str, parser=parse_text) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in parser(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    found = [v for (n, ls), v in samples(text).items() if n == name and labels.items() <= ls]
    assert len(found) == 1, (name, labels, text)
    return found[0]


async def push(exporter: PrometheusExporter, *metrics, **kwargs) -> None:
    request = request_of(*metrics, **kwargs)
    await exporter.push(Batch.from_request(Signal.METRICS, request))


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    """``promtool check metrics`` (the real one) on a text-format exposition."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not on PATH: .ci/run installs it with prometheus"
    return subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )


async def colliding_exporter(**kwargs: Any) -> PrometheusExporter:
    """An exporter holding a histogram with an ``le`` attribute, a summary with a
    ``quantile`` one and a counter, all in a scope with attributes."""
    exporter = PrometheusExporter(registry=CollectorRegistry(), **kwargs)
    await push(
        exporter,
        histogram_metric("app.latency", [0.1, 1.0], [2, 3, 1], 4.5, labels={"le": "high"}),
        summary_metric("rpc.time", {0.5: 1.0, 0.99: 3.0}, labels={"quantile": "p"}),
        sum_metric("app.requests", [({"http.route": "/a"}, 3.0)]),
        scope_attributes={"lib.mascot": "gopher", "name": "dropped"},
    )
    return exporter


async def test_scrape_shows_translated_series_in_text_format():
    exporter = PrometheusExporter(registry=CollectorRegistry())
    await push(
        exporter,
        sum_metric("app.requests", [({"http.route": "/a"}, 3.0), ({"http.route": "/b"}, 1.0)]),
        sum_metric("queue.size", [({}, 7.0)], unit="{item}", monotonic=False),
        histogram_metric("app.latency", [0.1, 1.0], [2, 3, 1], 4.5, labels={"op": "get"}),
    )
    body, content_type = exporter.render("")
    text = body.decode()
    assert content_type.startswith("text/plain; version=0.0.4")
    assert "# EOF" not in text
    assert "# TYPE app_requests_total counter" in text
    assert value(text, "app_requests_total", http_route="/a", job="shop/checkout") == 3.0
    assert value(text, "app_requests_total", http_route="/b", instance="pod-1") == 1.0
    assert value(text, "queue_size") == 7.0
    assert value(text, "app_latency_seconds_bucket", le="0.1", op="get") == 2
    assert value(text, "app_latency_seconds_bucket", le="1.0") == 5
    assert value(text, "app_latency_seconds_bucket", le="+Inf") == 6
    assert value(text, "app_latency_seconds_count") == 6
    assert value(text, "app_latency_seconds_sum") == 4.5
    assert value(text, "target_info", deployment_environment="test", job="shop/checkout") == 1
    assert text.count("# TYPE app_requests_total") == 1


async def test_openmetrics_is_negotiated_and_valid():
    exporter = PrometheusExporter(registry=CollectorRegistry())
    metric = histogram_metric("rpc.duration", [1.0], [1, 0], 0.5, unit="ms")
    metric.histogram.data_points[0].exemplars.add(
        as_double=0.5, time_unix_nano=T0, trace_id=b"\xab" * 16, span_id=b"\xcd" * 8
    )
    await push(exporter, metric, sum_metric("app.requests", [({}, 2.0)]))
    body, content_type = exporter.render(OM_ACCEPT)
    text = body.decode()
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert text.endswith("# EOF\n")
    assert "# UNIT rpc_duration_milliseconds milliseconds" in text
    assert "# TYPE target info" in text
    families = {f.name: f for f in parse_om(text)}  # the strict OpenMetrics parser accepts it
    assert families["app_requests"].type == "counter"
    bucket = next(
        s for s in families["rpc_duration_milliseconds"].samples if s.labels["le"] == "1.0"
    )
    assert bucket.exemplar is not None
    assert bucket.exemplar.labels == {"trace_id": "ab" * 16, "span_id": "cd" * 8}
    assert samples(text, parse_om)[("app_requests_total", frozenset(
        {"job": "shop/checkout", "instance": "pod-1", "otel_scope_name": "my.lib",
         "otel_scope_version": "1.2"}.items()))] == 2.0  # fmt: skip


async def test_delta_counters_are_served_cumulative():
    exporter = PrometheusExporter(registry=CollectorRegistry())
    for i, amount in enumerate([1.0, 4.0, 5.0], start=1):
        await push(exporter, sum_metric("jobs", [({}, amount)], temporality=DELTA, t=T0 + i * SEC))
    assert value(exporter.render("")[0].decode(), "jobs_total") == 10.0


async def test_other_signals_are_refused_permanently():
    exporter = PrometheusExporter(registry=CollectorRegistry())
    with pytest.raises(PermanentError):
        await exporter.push(Batch.from_request(Signal.TRACES, sample_request(Signal.TRACES)))


async def test_expired_series_disappear_from_the_scrape():
    exporter = PrometheusExporter(registry=CollectorRegistry(), metric_expiration=60)
    now = [0.0]
    exporter.store._clock = lambda: now[0]
    await push(exporter, gauge_metric("old", 1))
    now[0] = 50.0
    await push(exporter, gauge_metric("fresh", 2, t=T0 + 2 * SEC))
    now[0] = 100.0
    text = exporter.render("")[0].decode()
    assert "fresh" in text and "old" not in text


async def test_cardinality_cap_counts_on_the_gateway_registry():
    registry = CollectorRegistry()
    exporter = PrometheusExporter("prometheus/x", registry=registry, max_series_per_metric=2)
    await push(exporter, sum_metric("hits", [({"id": str(i)}, 1.0) for i in range(5)]))
    text = exporter.render("")[0].decode()
    assert sum(1 for (n, _) in samples(text) if n == "hits_total") == 2
    refused = registry.get_sample_value(
        "otelgate_prometheus_refused_series_total", {"exporter": "prometheus/x", "metric": "hits"}
    )
    assert refused == 3
    assert "otelgate_" not in text  # the gateway's own counters stay off the OTLP endpoint


async def test_admin_route_serves_the_exposition():
    exporter = PrometheusExporter(registry=CollectorRegistry(), path="/metrics/otlp")
    await push(exporter, gauge_metric("g", 5))
    app = FastAPI()
    app.include_router(exporter.admin_router())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
        plain = await client.get("/metrics/otlp")
        om = await client.get("/metrics/otlp", headers={"Accept": OM_ACCEPT})
    assert plain.status_code == 200 and value(plain.text, "g") == 5
    assert plain.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert om.text.endswith("# EOF\n")


def _config(exporter_id: str, settings: dict, signal: str = "metrics"):
    from gateway.config.loading import parse_config

    text = yaml.safe_dump(
        {
            "receivers": {"otlp": {"protocols": {"http": None}}},
            "exporters": {exporter_id: settings},
            "service": {"pipelines": {signal: {"receivers": ["otlp"], "exporters": [exporter_id]}}},
        }
    )
    return parse_config(text, environ={})


def test_config_defaults_and_checks():
    from gateway.config.issues import ConfigError

    pull = _config("prometheus", {}).exporters["prometheus"]
    assert (pull.path, pull.metric_expiration, pull.max_series_per_metric) == (
        "/metrics/otlp",
        300.0,
        2000,
    )
    assert pull.created_series is False
    push = _config("prometheusremotewrite", {"endpoint": "http://p:9090/api/v1/write"})
    assert push.exporters["prometheusremotewrite"].sending_queue.num_consumers == 1
    assert push.exporters["prometheusremotewrite"].created_series is False
    on = _config("prometheus", {"created_series": True}).exporters["prometheus"]
    assert on.created_series is True

    cases: list[tuple[dict[str, Any], str]] = [
        ({"path": "/metrics"}, "admin route"),
        ({"path": "metrics"}, "URL path"),
        ({"metric_expiration": 0}, "greater than 0"),
    ]
    for settings, problem in cases:
        with pytest.raises(ConfigError, match=problem):
            _config("prometheus", settings)
    with pytest.raises(ConfigError, match="http:// or https://"):
        _config("prometheusremotewrite", {"endpoint": "p:9090"})
    with pytest.raises(ConfigError, match="prometheus"):
        _config("prometheus", {}, signal="traces")


async def test_le_quantile_and_scope_attributes_pass_promtool_and_openmetrics_parser():
    exporter = await colliding_exporter()
    text = exporter.render("")[0].decode()
    checked = promtool_check(text)
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, "", ""), text
    om_text = exporter.render(OM_ACCEPT)[0].decode()
    families = {f.name: f for f in parse_om(om_text)}  # raises on an invalid exposition
    buckets = [s for s in families["app_latency_seconds"].samples if s.name.endswith("_bucket")]
    assert [s.labels["le"] for s in buckets] == ["0.1", "1.0", "+Inf"]
    quantiles = [s for s in families["rpc_time_seconds"].samples if "quantile" in s.labels]
    assert [s.labels["quantile"] for s in quantiles] == ["0.5", "0.99"]
    for family in families.values():
        for sample in family.samples:
            if family.name == "target":
                continue
            assert sample.labels["otel_scope_lib_mascot"] == "gopher", sample
            assert sample.labels["otel_scope_name"] == "my.lib", sample
            if family.name == "app_latency_seconds":
                assert sample.labels["exported_le"] == "high", sample
            if family.name == "rpc_time_seconds":
                assert sample.labels["exported_quantile"] == "p", sample
    assert samples(text) == samples(om_text, parse_om)  # the same series in both formats


async def test_created_series_are_off_by_default():
    exporter = await colliding_exporter()
    for accept in ("", OM_ACCEPT):
        text = exporter.render(accept)[0].decode()
        assert "_created" not in text, text


async def test_created_series_when_configured():
    exporter = await colliding_exporter(created_series=True)
    gauge = gauge_metric("mem", 1)
    gauge.description = "memory"
    await push(exporter, gauge)  # a gauge has no _created
    text = exporter.render(OM_ACCEPT)[0].decode()
    created = {n: v for (n, _), v in samples(text, parse_om).items() if n.endswith("_created")}
    assert created == {
        "app_requests_created": T0 / 1e9,
        "app_latency_seconds_created": T0 / 1e9,
        "rpc_time_seconds_created": T0 / 1e9,
    }
    checked = promtool_check(exporter.render("")[0].decode())
    assert checked.returncode == 0, checked.stderr


async def test_created_series_setting_reaches_the_exporter():
    from gateway.components import build_exporter

    pull = _config("prometheus", {"created_series": True}).exporters["prometheus"]
    exporter = build_exporter("prometheus", pull)
    assert isinstance(exporter, PrometheusExporter)
    await push(exporter, sum_metric("hits", [({}, 1.0)]))
    assert "hits_created" in exporter.render(OM_ACCEPT)[0].decode()
    settings = {"endpoint": "http://p:9090/api/v1/write", "created_series": True}
    config = _config("prometheusremotewrite", settings).exporters["prometheusremotewrite"]
    assert getattr(build_exporter("prometheusremotewrite", config), "created_series", None) is True
