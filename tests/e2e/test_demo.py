"""``otelgate demo`` as a new user runs it, bounded with --duration."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time

import httpx

from tests.support.gateway_process import otelgate_command
from tests.support.ports import free_port


def test_demo_runs_services_through_the_gateway(tmp_path):
    env_ports = {
        "OTELGATE_GRPC_ENDPOINT": f"127.0.0.1:{free_port()}",
        "OTELGATE_HTTP_ENDPOINT": f"127.0.0.1:{free_port()}",
        "OTELGATE_ADMIN_ENDPOINT": f"127.0.0.1:{free_port()}",
        "OTELGATE_DATA_DIR": str(tmp_path / "data"),
    }
    admin = f"http://{env_ports['OTELGATE_ADMIN_ENDPOINT']}"
    demo = subprocess.Popen(
        [*otelgate_command(), "demo", "--duration", "12", "--rate", "8"],
        env={**os.environ, **env_ports},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    reported: set[str] = set()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and demo.poll() is None and len(reported) < 3:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                answer = httpx.get(f"{admin}/health/services", timeout=2).json()
                reported = {s["name"] for s in answer["services"]}
            time.sleep(0.5)
        stdout, stderr = demo.communicate(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
    assert demo.returncode == 0, stdout + stderr
    assert reported >= {"frontend", "checkout", "payments"}, reported
    assert "Where to look" in stdout
    assert f"Open the dashboard: {admin}/" in stdout  # the README's first command ends there
    assert "services seen: checkout, frontend, payments" in stdout, stdout

    services: set[str] = set()
    server_spans = 0
    for line in (tmp_path / "data" / "traces.jsonl").read_text().splitlines():
        for rs in json.loads(line)["resourceSpans"]:
            attributes = {a["key"]: a["value"] for a in rs["resource"]["attributes"]}
            services.add(attributes["service.name"]["stringValue"])
            server_spans += sum(
                1 for ss in rs["scopeSpans"] for span in ss["spans"] if span.get("kind") == 2
            )
    assert services >= {"frontend", "checkout", "payments"}
    assert server_spans >= 30  # ~8 req/s for 8 s, three SERVER spans per request
    logs = (tmp_path / "data" / "logs.jsonl").read_text()
    assert "card network" in logs or "order placed" in logs
    # The services' stdout is JSON lines carrying trace ids (the correlated logging).
    frontend_log = (tmp_path / "data" / "demo-logs" / "frontend.log").read_text().splitlines()
    records = [json.loads(line) for line in frontend_log if line.startswith("{")]
    assert any(r.get("trace_id") and r.get("message") == "shopping" for r in records)
