"""Fixtures for end-to-end tests: a downstream sink and the real gateway process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway_process import GatewayProcess
from tests.support.otlp_sink import OtlpSink
from tests.support.workers import launch  # noqa: F401  (a fixture for the workers tests)

pytestmark = pytest.mark.e2e


@pytest.fixture
def sink() -> Iterator[OtlpSink]:
    with OtlpSink() as running:
        yield running


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """Start gateways with a config dict; every one started is stopped after the test."""
    started: list[GatewayProcess] = []

    def start(
        config: dict[str, Any],
        env: dict[str, str] | None = None,
        protocol_options: dict[str, dict[str, Any]] | None = None,
    ) -> GatewayProcess:
        workdir = tmp_path / f"gw{len(started)}"
        workdir.mkdir()
        gateway = GatewayProcess(config, workdir, env, protocol_options)
        started.append(gateway)
        return gateway.start()

    yield start
    for gateway in started:
        try:
            gateway.stop()
        finally:
            gateway.kill()


def forward_config(
    sink: OtlpSink, protocol: str = "http/protobuf", **exporter: Any
) -> dict[str, Any]:
    """A gateway config forwarding all three signals to ``sink`` with fast retries."""
    endpoint = sink.http_endpoint if protocol == "http/protobuf" else sink.grpc_endpoint
    settings: dict[str, Any] = {
        "endpoint": endpoint,
        "protocol": protocol,
        "retry_on_failure": {"initial_interval": "200ms", "max_interval": "1s"},
    }
    settings.update(exporter)
    return {
        "exporters": {"otlp/sink": settings},
        "service": {
            "pipelines": {
                signal: {"receivers": ["otlp"], "exporters": ["otlp/sink"]}
                for signal in ("traces", "metrics", "logs")
            },
            "shutdown_timeout": "5s",
        },
    }
