"""The README's instrument command, run as written from a fresh shell (no venv activated, no
OTEL_* or PYTHONPATH set), from the repository root: the example app's spans reach a real
gateway. Only the venv's location and the app's port are adapted to this test run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.gateway_process import GatewayProcess
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def readme_instrument_command() -> str:
    lines = [
        line.strip()
        for line in (ROOT / "README.md").read_text().splitlines()
        if "opentelemetry-instrument" in line and line.strip().startswith("OTEL_SERVICE_NAME=")
    ]
    assert len(lines) == 1, lines
    return lines[0]


def test_readme_instrument_command_works_from_a_fresh_shell(tmp_path):
    command = readme_instrument_command()
    assert ".venv/bin/opentelemetry-instrument" in command  # works without activating
    venv_bin = str(Path(sys.executable).parent) + "/"
    port = free_port()
    command = command.replace(".venv/bin/", venv_bin) + f" --host 127.0.0.1 --port {port}"
    config: dict[str, Any] = {
        "exporters": {"store": {}},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["store"]}}},
    }
    with GatewayProcess(config, tmp_path) as gateway:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTHON"))}
        env.pop("VIRTUAL_ENV", None)
        env["PATH"] = "/usr/local/bin:/usr/bin:/bin"  # a fresh shell: the venv is not on PATH
        # The one setting the README leaves to the default: where the gateway listens.
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://{gateway.grpc_endpoint}"
        env["OTEL_BSP_SCHEDULE_DELAY"] = "200"
        app = subprocess.Popen(
            ["sh", "-c", command], cwd=ROOT, env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                assert app.poll() is None, app.communicate()[1][-3000:]
                try:
                    if httpx.get(f"{base}/orders/1", timeout=1).status_code < 500:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the README's app did not start"
                time.sleep(0.2)
            found = None
            deadline = time.monotonic() + 20
            while found is None and time.monotonic() < deadline:
                answer = httpx.get(f"{gateway.admin_url}/traces?service=orders", timeout=5)
                traces = answer.json().get("traces", []) if answer.status_code == 200 else []
                found = traces[0] if traces else None
                time.sleep(0.3)
            assert found is not None, gateway.logs()[-3000:]
        finally:
            os.killpg(app.pid, signal.SIGTERM)  # the shell and the app it started
            try:
                app.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(app.pid, signal.SIGKILL)
                app.wait(timeout=5)
