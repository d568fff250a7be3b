"""``otelgate demo`` as a new user runs it, bounded with --duration."""

from __future__ import annotations

import json
import os
import subprocess

from tests.support.gateway_process import otelgate_command
from tests.support.ports import free_port


def test_demo_runs_services_through_the_gateway(tmp_path):
    env_ports = {
        "OTELGATE_GRPC_ENDPOINT": f"127.0.0.1:{free_port()}",
        "OTELGATE_HTTP_ENDPOINT": f"127.0.0.1:{free_port()}",
        "OTELGATE_ADMIN_ENDPOINT": f"127.0.0.1:{free_port()}",
        "OTELGATE_DATA_DIR": str(tmp_path / "data"),
    }
    result = subprocess.run(
        [*otelgate_command(), "demo", "--duration", "8", "--rate", "8"],
        env={**os.environ, **env_ports},
        capture_output=True,
        text=True,
        timeout=150,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Where to look" in result.stdout
    assert "services seen: checkout, frontend, payments" in result.stdout, result.stdout

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
