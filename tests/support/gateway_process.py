"""The real gateway as a subprocess (``otelgate run --config FILE``) on free 127.0.0.1 ports."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.commands import script
from tests.support.ports import free_port
from tests.support.processes import wait_ready


def otelgate_command() -> list[str]:
    """The installed ``otelgate`` console script of this environment."""
    return [script("otelgate")]


class GatewayProcess:
    """Starts the gateway with ``config`` (a dict; receiver and admin endpoints are filled in
    with free ports unless given; ``protocol_options`` adds settings to them: keys ``grpc``,
    ``http`` and ``admin``) and stops it
    with SIGTERM, then SIGKILL if it hangs."""

    def __init__(
        self,
        config: dict[str, Any],
        workdir: Path,
        env: dict[str, str] | None = None,
        protocol_options: dict[str, dict[str, Any]] | None = None,
    ):
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.admin_port = free_port()
        config = dict(config)
        options = protocol_options or {}
        config.setdefault(
            "receivers",
            {
                "otlp": {
                    "protocols": {
                        "grpc": {"endpoint": self.grpc_endpoint, **options.get("grpc", {})},
                        "http": {
                            "endpoint": f"127.0.0.1:{self.http_port}",
                            **options.get("http", {}),
                        },
                    }
                }
            },
        )
        admin = {"endpoint": f"127.0.0.1:{self.admin_port}", **options.get("admin", {})}
        config.setdefault("admin", admin)
        self.config = config
        self.workdir = workdir
        self.config_path = workdir / "otelgate.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = workdir / "otelgate.log"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        # Sent with admin requests (a read token when the config turns on authentication).
        self.admin_headers: dict[str, str] = {}

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self, timeout: float = 20.0) -> GatewayProcess:
        """Start and wait until ``/health/ready`` answers 200."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [*otelgate_command(), "run", "--config", str(self.config_path)],
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        if wait_ready(self.proc, f"{self.admin_url}/health/ready", "gateway", self.logs, timeout):
            return self
        self.kill()
        raise TimeoutError(f"gateway not ready after {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def metric(self, name: str, /, **labels: str) -> float:
        """One sample from the gateway's ``/metrics`` (0 when absent)."""
        from prometheus_client.parser import text_string_to_metric_families

        response = httpx.get(f"{self.admin_url}/metrics", headers=self.admin_headers, timeout=5)
        text = response.raise_for_status().text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return float(sample.value)
        return 0.0

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code (SIGKILL after ``timeout``)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self.kill()
