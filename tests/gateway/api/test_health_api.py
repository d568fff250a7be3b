"""``/health``, ``/health/services[/{name}]`` on a running in-process gateway: status codes,
response shapes, caching and the OpenAPI schemas."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.config.loading import parse_config
from gateway.otlp.batch import Batch, Signal
from gateway.service import Gateway
from tests.factories import health_config_text, traces_request

pytestmark = pytest.mark.timeout(60)


class Running:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        transport = httpx.ASGITransport(app=gateway.admin_app)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://admin")

    def observe(self, service: str, spans: int = 3, errors: int = 0) -> None:
        request = traces_request(spans, service=service)
        for i, span in enumerate(request.resource_spans[0].scope_spans[0].spans):
            if i < errors:
                span.status.code = span.status.STATUS_CODE_ERROR
        self.gateway.health.observe(Batch.from_request(Signal.TRACES, request))


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    started: list[Running] = []

    async def run(**health: Any) -> Running:
        gateway = Gateway(parse_config(health_config_text(tmp_path, **health), environ={}))
        await gateway.start()
        started.append(Running(gateway))
        return started[-1]

    yield run
    for running in started:
        await running.client.aclose()
        await running.gateway.stop(drain_timeout=1.0)


async def test_health_reports_components_exporters_system_and_services(start, tmp_path):
    gw = await start()
    gw.observe("orders", spans=20, errors=1)
    response = await gw.client.get("/health")
    assert response.status_code == 200
    body = response.json()
    # Healthy, unless the machine's CPU is busy (other tests run too): that only degrades.
    assert body["status"] in ("healthy", "degraded")
    # In-process: the gateway's CPU is this test's; host CPU never counts.
    assert all(r.startswith("gateway event loop CPU at") for r in body["reasons"]), body["reasons"]
    assert body["state"] == "running" and body["version"] and body["instance_id"]
    receivers = {r["name"]: r for r in body["components"]["receivers"]}
    assert receivers["otlp"]["status"] == "ok"
    assert receivers["otlp"]["endpoints"] == ["http 127.0.0.1:0"]
    assert receivers["hostmetrics"]["type"] == "hostmetrics"
    assert sorted(body["components"]["pipelines"], key=lambda p: p["name"]) == [
        {"name": "metrics", "accepting": True},
        {"name": "traces", "accepting": True},
    ]
    [exporter] = body["exporters"]
    assert exporter["name"] == "file" and exporter["status"] == "ok"
    assert exporter["queue_capacity"] == 100_000 and exporter["queue_fill_ratio"] == 0.0
    system = body["system"]
    assert 0.0 <= system["cpu"]["utilization"] <= 1.0
    assert 0.0 < system["memory"]["utilization"] < 1.0 and system["memory"]["total_bytes"] > 0
    holding = [fs for fs in system["filesystems"] if fs["holds"]]
    assert [fs["holds"] for fs in holding] == [[str(tmp_path / "data")]]
    assert holding[0]["status"] in ("healthy", "warning", "critical")
    assert system["process"]["memory_rss_bytes"] > 0 and system["process"]["threads"] >= 1
    # 1 error in 20 requests (5 %) is unhealthy by default.
    assert body["services"] == {
        "total": 1, "healthy": 0, "degraded": 0, "unhealthy": 1, "stale": 0,
        "untracked": 0, "attention": ["orders"],
    }  # fmt: skip


async def test_unhealthy_answers_503_with_the_reasons(start):
    gw = await start(system={"disk": {"warning": 0.0001, "critical": 0.0001}})
    response = await gw.client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy" and body["system"]["status"] == "critical"
    assert any(r.startswith("disk / at") and r.endswith("(critical)") for r in body["reasons"])


async def test_a_stopped_gateway_is_unhealthy(start):
    gw = await start(cache_ttl=0)
    await gw.gateway.stop(drain_timeout=1.0)
    response = await gw.client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["state"] == "stopped" and "gateway is stopped" in body["reasons"]
    assert {r["status"] for r in body["components"]["receivers"]} == {"stopped"}


async def test_services_list_one_service_and_404(start):
    gw = await start(services={"orders": {"error_rate_unhealthy": 0.5}})
    gw.observe("orders", spans=20, errors=2)
    gw.observe("team/billing", spans=3)
    listing = (await gw.client.get("/health/services")).json()
    assert [s["name"] for s in listing["services"]] == ["orders", "team/billing"]
    assert listing["count"] == 2 and listing["max_services"] == 1000
    response = await gw.client.get("/health/services/orders")
    assert response.status_code == 200
    orders = response.json()
    assert orders["status"] == "degraded"  # 10 %: over 1 %, under the override's 50 %
    assert orders["reasons"] == ["error rate 10.0% >= 1.0%"]
    assert (orders["requests"], orders["errors"], orders["error_rate"]) == (20, 2, 0.1)
    assert orders["request_rate"] == pytest.approx(20 / orders["window_seconds"])
    assert orders["latency"]["p99"] == pytest.approx(0.0005, rel=0.02)  # factories: 500 µs
    assert orders["thresholds"]["error_rate_unhealthy"] == 0.5
    assert set(orders["signals"]) == {"traces"}
    billing = await gw.client.get("/health/services/team/billing")
    assert billing.status_code == 200 and billing.json()["status"] == "healthy"
    missing = await gw.client.get("/health/services/nope")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "service 'nope' has not been seen"}


async def test_answers_are_cached_for_cache_ttl(start):
    gw = await start(cache_ttl="5s")
    now = [1000.0]
    gw.gateway.health_api.clock = lambda: now[0]
    gw.observe("a")
    first = (await gw.client.get("/health/services")).json()
    health = (await gw.client.get("/health")).json()
    gw.observe("b")
    now[0] += 4.9
    assert (await gw.client.get("/health/services")).json() == first  # same answer, no rework
    assert (await gw.client.get("/health/services/b")).status_code == 404
    assert (await gw.client.get("/health")).json() == health
    now[0] += 0.2
    assert [s["name"] for s in (await gw.client.get("/health/services")).json()["services"]] == [
        "a", "b"
    ]  # fmt: skip
    assert (await gw.client.get("/health")).json()["services"]["total"] == 2


async def test_openapi_documents_the_response_schemas(start):
    gw = await start()
    spec = (await gw.client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    for name in ("HealthResponse", "ServiceHealth", "ServicesResponse", "SystemHealth",
                 "ExporterHealth", "ServiceThresholds", "Latency"):  # fmt: skip
        assert name in schemas, name
    assert set(schemas["HealthResponse"]["properties"]) >= {
        "status", "components", "exporters", "system", "services", "last_updated"
    }  # fmt: skip
    assert schemas["ServiceHealth"]["properties"]["status"]["enum"] == [
        "healthy", "degraded", "unhealthy", "stale"
    ]  # fmt: skip

    def ref(path: str, code: str) -> str:
        content = spec["paths"][path]["get"]["responses"][code]["content"]
        return str(content["application/json"]["schema"]["$ref"])

    assert ref("/health", "200").endswith("/HealthResponse")
    assert ref("/health", "503").endswith("/HealthResponse")
    assert ref("/health/services", "200").endswith("/ServicesResponse")
    assert ref("/health/services/{name}", "200").endswith("/ServiceHealth")
    assert "404" in spec["paths"]["/health/services/{name}"]["get"]["responses"]
