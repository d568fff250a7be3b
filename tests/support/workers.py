"""Gateways run with ``--workers`` for the end-to-end tests (tests/e2e/test_workers_*.py): the
process, its worker slots from ``/health``, the ``launch`` fixture (tests/e2e/conftest.py
offers it), polling, and readers of the Prometheus expositions."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans
from opentelemetry.sdk.trace.export import SpanExporter
from prometheus_client.parser import text_string_to_metric_families

from tests.support.gateway_process import GatewayProcess, otelgate_command
from tests.support.processes import wait_ready


class WorkersGateway(GatewayProcess):
    """The gateway process started as ``otelgate run --config FILE *args``."""

    def __init__(self, config: dict[str, Any], workdir: Path, args: list[str],
                 env: dict[str, str] | None = None) -> None:  # fmt: skip
        super().__init__(config, workdir, env)
        self.args = args

    def start(self, timeout: float = 30.0) -> WorkersGateway:
        """Start and wait until ``/health/ready`` answers 200 and every worker runs."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*otelgate_command(), "run", "--config", str(self.config_path), *self.args],
                cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        if not wait_ready(self.proc, f"{self.admin_url}/health/ready", "gateway", self.logs,
                          timeout):  # fmt: skip
            self.kill()
            raise TimeoutError(f"gateway not ready after {timeout}s:\n{self.logs()}")
        if self.health()["workers"] is not None:
            running = wait_until(lambda: all_running(self), max(1.0, deadline - time.monotonic()))
            assert running, f"workers not running:\n{self.health()['workers']}\n{self.logs()}"
        return self

    def health(self) -> dict[str, Any]:
        """``/health`` (its body also when it answers 503: a worker restarting, say)."""
        response = httpx.get(f"{self.admin_url}/health", timeout=5)
        assert response.status_code in (200, 503), response.text
        return dict(response.json())

    def slots(self) -> list[dict[str, Any]]:
        """``/health`` → ``workers.workers``: one entry per worker slot."""
        return list(self.health()["workers"]["workers"])


def all_running(gateway: WorkersGateway) -> bool:
    """Every worker slot runs a process that has reported at least once."""
    return all(s["state"] == "running" and s["last_report_at"] for s in gateway.slots())


def wait_until(check: Callable[[], Any], timeout: float, every: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy (returned) or ``timeout`` passes
    (the last falsy value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(every)


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., WorkersGateway]]:
    """Start gateways (``launch(config, *args)``); each is stopped (then killed) after the test."""
    started: list[WorkersGateway] = []

    def start(config: dict[str, Any], *args: str) -> WorkersGateway:
        workdir = tmp_path / f"gw{len(started)}"
        workdir.mkdir()
        # Its own data directory: the store (SLO buckets, alerts) of one never feeds another.
        gateway = WorkersGateway(
            config, workdir, list(args), {"OTELGATE_DATA_DIR": str(workdir / "data")}
        )
        started.append(gateway)
        return gateway.start()

    yield start
    for gateway in started:
        try:
            gateway.stop(timeout=30)
        finally:
            gateway.kill()


def span_exporter(gateway: GatewayProcess, grpc: bool) -> SpanExporter:
    if grpc:
        return GrpcSpans(endpoint=gateway.grpc_endpoint, insecure=True, timeout=10)
    return HttpSpans(endpoint=f"{gateway.http_endpoint}/v1/traces", timeout=10)


Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def exposition(gateway: GatewayProcess, path: str) -> Series:
    """Every sample of a Prometheus exposition (``/metrics``, ``/metrics/otlp``) by name and
    label set, without ``instance`` (each gateway's own ``service.instance.id``); a series
    exposed twice fails the test."""
    text = httpx.get(f"{gateway.admin_url}{path}", timeout=5).raise_for_status().text
    samples = [
        ((s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "instance"))),
         s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]  # fmt: skip
    twice = [key for key, n in Counter(key for key, _ in samples).items() if n > 1]
    assert not twice, f"{path}: series exposed more than once: {twice}"
    return dict(samples)


def accepted_items(gateway: GatewayProcess) -> dict[str, float]:
    """``otelgate_receiver_accepted_items_total`` of ``/metrics``, per signal."""
    found: dict[str, float] = {}
    for (name, labels), value in exposition(gateway, "/metrics").items():
        if name == "otelgate_receiver_accepted_items_total":
            signal = dict(labels)["signal"]
            found[signal] = found.get(signal, 0.0) + value
    return found
