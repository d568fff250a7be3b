"""Credentials in exporter endpoints and headers are used, and never printed: not in the
gateway's log output (its own lines and httpx's), not in /health, not by check-config."""

from __future__ import annotations

import base64
import subprocess
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.otlp.batch import Signal
from tests.support.gateway_process import otelgate_command
from tests.support.http_server import TrackingHTTPServer, serving
from tests.support.otlp_samples import sample_request
from tests.support.ports import free_port

SECRETS = ("S3cretPass", "Hunter2pw", "K3YSECRET")


class _Busy(BaseHTTPRequestHandler):
    """A backend that records the credentials it gets and answers 503 (retry later)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        seen = (self.headers.get("Authorization"), self.headers.get("X-API-Key"))
        self.server.seen.append(seen)  # type: ignore[attr-defined]
        self.send_response(503)
        self.send_header("Retry-After", "1")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def backend() -> Iterator[TrackingHTTPServer]:
    with serving(_Busy) as server:
        server.seen = []  # type: ignore[attr-defined]
        yield server


def _config(backend: TrackingHTTPServer) -> dict[str, Any]:
    fast = {"initial_interval": "100ms", "max_interval": "200ms", "max_elapsed_time": "1s"}
    return {
        "exporters": {
            "otlp/busy": {
                "endpoint": f"http://alice:S3cretPass@127.0.0.1:{backend.server_port}",
                "protocol": "http/protobuf",
                "headers": {"X-API-Key": "K3YSECRET"},
            },
            "otlp/down": {
                "endpoint": f"http://bob:Hunter2pw@127.0.0.1:{free_port()}",
                "protocol": "http/protobuf",
                "retry_on_failure": fast,
            },
        },
        "service": {
            "pipelines": {
                "traces": {"receivers": ["otlp"], "exporters": ["otlp/busy", "otlp/down"]}
            },
            "shutdown_timeout": "1s",
        },
    }


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_exporter_credentials_are_sent_but_never_printed(
    start_gateway, backend, log_format: str
) -> None:
    config = _config(backend)
    config["logging"] = {"level": "info", "format": log_format}
    gateway = start_gateway(config)
    body = sample_request(Signal.TRACES, 1).SerializeToString()
    headers = {"Content-Type": "application/x-protobuf"}
    response = httpx.post(f"{gateway.http_endpoint}/v1/traces", content=body, headers=headers)
    assert response.status_code == 200
    deadline = time.monotonic() + 15
    while True:
        health = httpx.get(f"{gateway.admin_url}/health", timeout=5).text
        if '"failed"' in health and backend.seen:
            break
        assert time.monotonic() < deadline, health
        time.sleep(0.2)
    basic = "Basic " + base64.b64encode(b"alice:S3cretPass").decode()
    assert backend.seen[0] == (basic, "K3YSECRET")
    assert "http://bob:***@127.0.0.1" in health  # the failed exporter's error, masked
    gateway.stop()
    logs = gateway.logs()
    assert "bob:***@127.0.0.1" in logs  # the exporter's own warnings
    assert "alice:***@127.0.0.1" in logs  # httpx's request log line
    for secret in SECRETS:
        assert secret not in health
        assert secret not in logs


def test_check_config_never_prints_credentials(tmp_path: Path, backend) -> None:
    config = _config(backend)
    config["exporters"]["otlp/busy"]["endpoint"] = "ftp://alice:S3cretPass@collector/"
    config["exporters"]["otlp/down"]["endpoint"] = "http://bob:Hunter2pw@collector:port"
    config["exporters"]["otlp/down"]["headers"] = {"X-API-Key": ["K3YSECRET"]}
    config["receivers"] = {"otlp": {"protocols": {"http": None}}}
    path = tmp_path / "otelgate.yaml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [*otelgate_command(), "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "exporters.otlp/busy.endpoint: 'ftp://alice:***@collector/'" in output
    assert "exporters.otlp/down.endpoint" in output and "bob:***@collector" in output
    assert "exporters.otlp/down.headers.X-API-Key" in output
    for secret in SECRETS:
        assert secret not in output
