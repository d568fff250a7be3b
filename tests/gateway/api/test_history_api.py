"""``/health/history`` and ``/health/history/{name}`` on a running in-process gateway: shapes,
ISO-8601 times, the 404, caching and the OpenAPI schemas."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.config.loading import parse_config
from gateway.health.history import SystemHistory
from gateway.health.system import ProcessUsage, SystemSnapshot
from gateway.service import Gateway
from tests.gateway.health.helpers import spans_batch

pytestmark = pytest.mark.timeout(60)
T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z, a minute boundary


def config_text(tmp_path: Path, **health: Any) -> str:
    return yaml.safe_dump(
        {
            "receivers": {"otlp": {"protocols": {"http": {"endpoint": "127.0.0.1:0"}}}},
            "exporters": {"file": {"path": str(tmp_path / "out.jsonl")}},
            "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file"]}}},
            "admin": {"endpoint": "127.0.0.1:0"},
            "health": health,
        }
    )


class Running:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.now = T0 + 30
        gateway.health.clock = lambda: self.now
        transport = httpx.ASGITransport(app=gateway.admin_app)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://admin")


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    started: list[Running] = []

    async def run(**health: Any) -> Running:
        gateway = Gateway(parse_config(config_text(tmp_path, **health), environ={}))
        await gateway.start()
        started.append(Running(gateway))
        return started[-1]

    yield run
    for running in started:
        await running.client.aclose()
        await running.gateway.stop(drain_timeout=1.0)


def snapshot(at: float) -> SystemSnapshot:
    return SystemSnapshot(
        at=at,
        interval=10.0,
        cpu_modes={"idle": 0.5, "user": 0.5},
        memory_total=4096,
        memory_states={"used": 1024},
        filesystems=(),
        network=(),
        process=ProcessUsage(cpu_utilization=0.125, memory_rss=2048, threads=4, open_fds=None),
    )


async def test_history_of_every_service_and_the_system(start):
    gw = await start(history_minutes=3, cache_ttl=0)
    gw.gateway.health_api.system_history = None  # the gateway's own sampling, left out here
    gw.gateway.health.observe(spans_batch("orders", [0.25] * 4, errors={0}))
    gw.gateway.health.observe(spans_batch("team/billing", [0.01]))
    body = (await gw.client.get("/health/history")).json()
    assert (body["bucket_seconds"], body["minutes"]) == (60, 3)
    assert body["system"] == []  # no system history: no points, not an error
    assert sorted(body["services"]) == ["orders", "team/billing"]
    orders = body["services"]["orders"]
    assert [p["start"] for p in orders] == [
        "2027-01-15T07:58:00Z", "2027-01-15T07:59:00Z", "2027-01-15T08:00:00Z"
    ]  # fmt: skip
    assert orders[0] == {
        "start": "2027-01-15T07:58:00Z", "requests": 0, "errors": 0,
        "p50": None, "p95": None, "p99": None,
    }  # fmt: skip
    assert (orders[-1]["requests"], orders[-1]["errors"]) == (4, 1)
    assert orders[-1]["p95"] == pytest.approx(0.25, rel=0.02)

    ring = SystemHistory(interval=10)
    ring.record(snapshot(T0), now=T0)
    ring.record(snapshot(T0 + 10), now=T0 + 10)
    gw.gateway.health_api.system_history = ring
    system = (await gw.client.get("/health/history")).json()["system"]
    assert system[1] == {
        "at": "2027-01-15T08:00:10Z", "cpu_utilization": 0.5, "memory_utilization": 0.25,
        "process_cpu_utilization": 0.125, "process_rss_bytes": 2048,
    }  # fmt: skip


async def test_history_of_one_service_and_404(start):
    gw = await start(history_minutes=2)
    gw.gateway.health.observe(spans_batch("team/billing", [0.01] * 2))
    response = await gw.client.get("/health/history/team/billing")
    assert response.status_code == 200
    body = response.json()
    assert (body["service"], body["bucket_seconds"], body["minutes"]) == ("team/billing", 60, 2)
    assert [(p["start"], p["requests"]) for p in body["points"]] == [
        ("2027-01-15T07:59:00Z", 0), ("2027-01-15T08:00:00Z", 2)
    ]  # fmt: skip
    missing = await gw.client.get("/health/history/nope")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "service 'nope' has not been seen"}
    # /health/services/{name:path} does not swallow it, nor the reverse.
    assert (await gw.client.get("/health/services/team/billing")).json()["name"] == "team/billing"


async def test_history_is_cached_for_cache_ttl(start):
    gw = await start(cache_ttl="5s")
    now = [1000.0]
    gw.gateway.health_api.clock = lambda: now[0]
    gw.gateway.health.observe(spans_batch("a", [0.01]))
    first = (await gw.client.get("/health/history")).json()
    gw.gateway.health.observe(spans_batch("b", [0.01]))
    assert (await gw.client.get("/health/history")).json() == first
    now[0] += 5.1
    assert sorted((await gw.client.get("/health/history")).json()["services"]) == ["a", "b"]


async def test_openapi_documents_the_history_schemas(start):
    gw = await start()
    spec = (await gw.client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    for name in ("HistoryResponse", "ServiceHistoryResponse", "ServiceMinute", "SystemSample"):
        assert name in schemas, name
    assert schemas["ServiceMinute"]["properties"]["start"]["format"] == "date-time"

    def ref(path: str, code: str) -> str:
        content = spec["paths"][path]["get"]["responses"][code]["content"]
        return str(content["application/json"]["schema"]["$ref"])

    assert ref("/health/history", "200").endswith("/HistoryResponse")
    assert ref("/health/history/{name}", "200").endswith("/ServiceHistoryResponse")
    assert "404" in spec["paths"]["/health/history/{name}"]["get"]["responses"]
