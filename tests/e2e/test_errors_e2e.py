"""End to end: ``opentelemetry-instrument`` on a FastAPI app whose three routes raise three
different exceptions, 50 requests in all, exporting over OTLP/gRPC to the real gateway with
error tracking and the store on. The gateway must show exactly three groups counting 50, each
with a sample whose trace ``GET /traces/{id}`` returns and whose log lines ``GET /logs`` finds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.commands import script
from tests.support.gateway_process import GatewayProcess
from tests.support.ports import free_port
from tests.support.processes import stop_process

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
APP = """
import logging
import uuid

from fastapi import FastAPI

from instrumentation import RequestLoggingMiddleware, use_root_logging_for_uvicorn

log = logging.getLogger("shop")
use_root_logging_for_uvicorn()
app = FastAPI()
app.add_middleware(RequestLoggingMiddleware)


def load_cart(cart_id: int) -> list[str]:
    raise ValueError(f"cart {cart_id} has no items")


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/checkout/{cart_id}")
async def checkout(cart_id: int) -> dict[str, int]:
    log.info("checking out cart %d", cart_id)
    return {"items": len(load_cart(cart_id))}


@app.get("/customers/{number}")
async def customer(number: int) -> dict[str, str]:
    log.info("looking up customer %d", number)
    raise LookupError(f"customer {uuid.uuid4()} (#{number}) not found")


@app.get("/average/{total}")
async def average(total: int) -> dict[str, float]:
    log.info("averaging %d over no orders", total)
    return {"average": total / 0}
"""
REQUESTS = {"/checkout/{n}": 20, "/customers/{n}": 17, "/average/{n}": 13}
EXPECTED = {"ValueError": 20, "LookupError": 17, "ZeroDivisionError": 13}


def _pump(stream: Any, sink: list[str]) -> None:
    for line in stream:
        sink.append(line)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayProcess, str]]:
    workdir = tmp_path_factory.mktemp("errors")
    config = {
        "exporters": {"store": None},
        "service": {
            "pipelines": {
                "traces": {"receivers": ["otlp"], "exporters": ["store"]},
                "logs": {"receivers": ["otlp"], "exporters": ["store"]},
            }
        },
        "store": {"path": str(workdir / "otelgate.db"), "flush_interval": "0.5s"},
    }
    gateway = GatewayProcess(config, workdir).start()
    app_dir = workdir / "app"
    app_dir.mkdir()
    (app_dir / "shop_app.py").write_text(APP)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LOG_"))}
    env.update(
        OTEL_SERVICE_NAME="shop",
        OTEL_RESOURCE_ATTRIBUTES="service.version=2.1.0,deployment.environment.name=e2e",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{gateway.grpc_endpoint}",
        OTEL_BSP_SCHEDULE_DELAY="200",
        OTEL_BLRP_SCHEDULE_DELAY="200",
        PYTHONPATH=f"{app_dir}{os.pathsep}{ROOT}",
        PYTHONUNBUFFERED="1",
    )
    cmd = [script("opentelemetry-instrument"), sys.executable, "-m", "uvicorn", "shop_app:app",
           "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    app = subprocess.Popen(
        cmd, cwd=app_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output: list[str] = []
    threading.Thread(target=_pump, args=(app.stdout, output), daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert app.poll() is None, "app exited:\n" + "".join(output)[-3000:]
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "app not ready:\n" + "".join(output)[-3000:]
            time.sleep(0.1)
        for path, times in REQUESTS.items():
            for n in range(times):  # a new connection each: uvicorn closes one after a 500
                answer = httpx.get(base + path.format(n=1000 + n), timeout=10)
                assert answer.status_code == 500, "".join(output)[-3000:]
        yield gateway, base
    finally:
        stop_process(app, 10)
        try:
            gateway.stop()
        finally:
            gateway.kill()


def _errors_when_counted(admin: str, total: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        page = httpx.get(f"{admin}/errors", params={"sort": "count"}, timeout=5).json()
        if sum(g["count"] for g in page["groups"]) >= total or time.monotonic() > deadline:
            return page
        time.sleep(0.3)


def test_three_bugs_fifty_requests_three_groups(stack: tuple[GatewayProcess, str]) -> None:
    gateway, _ = stack
    page = _errors_when_counted(gateway.admin_url, 50)
    print(json.dumps(page, indent=2))  # the note quotes a real answer (pytest -s)
    counts = {g["type"]: g["count"] for g in page["groups"]}
    assert counts == EXPECTED, page
    assert page["total"] == 3
    for group in page["groups"]:
        assert group["services"] == ["shop"] and group["service_versions"] == ["2.1.0"]
        assert group["environments"] == ["e2e"] and group["status"] == "unresolved"
        assert group["basis"] == "stack" and group["language"] == "python"
    culprits = {g["type"]: g["culprit"] for g in page["groups"]}
    assert culprits["ValueError"].endswith("in load_cart"), culprits
    assert culprits["LookupError"].endswith("in customer"), culprits
    assert culprits["ZeroDivisionError"].endswith("in average"), culprits


def test_each_sample_links_to_its_trace_and_its_logs(stack: tuple[GatewayProcess, str]) -> None:
    gateway, _ = stack
    admin = gateway.admin_url
    page = _errors_when_counted(admin, 50)
    for group in page["groups"]:
        detail = httpx.get(f"{admin}/errors/{group['id']}", timeout=5).json()
        traced = [s for s in detail["samples"] if s["trace_id"]]
        assert traced, detail
        sample = traced[0]
        assert sample["attributes"].get("http.route", "").startswith("/"), sample
        assert group["type"] in sample["stacktrace"]
        deadline = time.monotonic() + 10  # the store writes after the tracker has counted
        while (trace := httpx.get(f"{admin}{sample['links']['trace']}", timeout=5)).status_code \
                == 404 and time.monotonic() < deadline:  # fmt: skip
            time.sleep(0.3)
        dropped = gateway.metric("otelgate_exporter_dropped_items_total", exporter="store")
        assert trace.status_code == 200, f"{trace.text} (store dropped {dropped})"
        body = trace.json()
        assert {s["trace_id"] for s in body["spans"]} == {sample["trace_id"]}
        assert group["id"] in body["error_groups"]
        deadline = time.monotonic() + 10
        while True:
            logs = httpx.get(f"{admin}{sample['links']['logs']}", timeout=5).json()["logs"]
            bodies = [r["body"] for r in logs]
            if any(b.startswith(("checking out", "looking up", "averaging")) for b in bodies):
                break
            assert time.monotonic() < deadline, bodies
            time.sleep(0.3)
        assert all(r["trace_id"] == sample["trace_id"] for r in logs)
