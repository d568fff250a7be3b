"""The deployment files at the top of the repository: the compose stack and the agent-mode
Collector config. No Docker engine runs here, so each file is checked with the real tool that
reads it where we have one (otelgate itself, promtool) and for consistency otherwise."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from exporters.prometheus.pull import PrometheusExporterConfig
from gateway.config.loading import load_config
from gateway.receivers.otlp import OtlpReceiverConfig

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose"


def compose() -> dict:
    return yaml.safe_load((COMPOSE / "docker-compose.yaml").read_text())


def test_compose_gateway_config_is_valid_and_scraped_where_it_serves():
    config = load_config(COMPOSE / "otelgate.yaml", environ={})
    prometheus = config.exporters["prometheus"]
    assert isinstance(prometheus, PrometheusExporterConfig)
    scrape = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())["scrape_configs"]
    paths = {job["metrics_path"]: job for job in scrape}
    assert paths[prometheus.path].get("honor_labels") is True
    assert "/metrics" in paths
    port = config.admin.port
    for job in scrape:
        assert job["static_configs"][0]["targets"] == [f"otelgate:{port}"]


def test_compose_prometheus_config_passes_promtool(tmp_path):
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: .ci/run installs Debian's prometheus package"
    # rule_files points inside the container; check the file with that glob made local.
    text = (COMPOSE / "prometheus.yml").read_text().replace("/etc/prometheus/rules", "rules")
    (tmp_path / "prometheus.yml").write_text(text)
    (tmp_path / "rules").mkdir()
    result = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_services_mounts_and_ports_are_consistent():
    stack = compose()
    services = stack["services"]
    assert {"otelgate", "prometheus", "loki", "jaeger", "grafana", "alertmanager"} <= set(services)
    for name, service in services.items():
        for dependency in service.get("depends_on", []):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (COMPOSE / source).exists(), f"{name} mounts missing {source}"
    config = load_config(COMPOSE / "otelgate.yaml", environ={})
    published = {p.split(":")[1] for p in services["otelgate"]["ports"]}
    otlp = config.receivers["otlp"]
    assert isinstance(otlp, OtlpReceiverConfig)
    listen = {str(getattr(otlp.protocols, p).port) for p in ("grpc", "http")}
    assert listen | {str(config.admin.port)} <= published
    loki = config.exporters["loki"]
    assert getattr(loki, "endpoint", "").startswith("http://loki:")


@pytest.mark.parametrize("signal", ["traces", "metrics", "logs"])
def test_agent_collector_config_forwards_every_signal_to_the_gateway(signal):
    agent = yaml.safe_load((ROOT / "otel-collector.yaml").read_text())
    pipeline = agent["service"]["pipelines"][signal]
    for kind in ("receivers", "processors", "exporters"):
        for component in pipeline[kind]:
            assert component in agent[kind], f"{signal}: {component} is not defined"
    exporter = agent["exporters"][pipeline["exporters"][0]]
    assert exporter["endpoint"] == "${env:OTELGATE_ENDPOINT}"
    assert exporter["retry_on_failure"]["max_elapsed_time"] == "0s"
    assert pipeline["processors"][0] == "memory_limiter"  # must come first
