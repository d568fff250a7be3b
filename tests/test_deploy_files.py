"""The deployment files at the top of the repository: the compose stack and the agent-mode
Collector config. No Docker engine runs here, so each file is checked with the real tool that
reads it where we have one (otelgate itself, promtool) and for consistency otherwise."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from exporters.elasticsearch.config import ElasticsearchExporterConfig
from exporters.prometheus.pull import PrometheusExporterConfig
from gateway.config.loading import load_config
from gateway.config.model import Config
from gateway.receivers.otlp import OtlpReceiverConfig

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose"


def compose() -> dict:
    return yaml.safe_load((COMPOSE / "docker-compose.yaml").read_text())


def compose_config(tmp_path: Path, environ: dict[str, str] | None = None) -> Config:
    """compose/otelgate.yaml, with the token files the `secrets` service makes made here."""
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    for name in ("ingest", "read", "admin", "grafana-admin"):
        (secrets / name).mkdir(exist_ok=True)
        (secrets / name / "token").write_text(f"{name}-token-made-for-this-test\n")
    text = (COMPOSE / "otelgate.yaml").read_text().replace("/secrets/", f"{secrets}/")
    (tmp_path / "otelgate.yaml").write_text(text)
    return load_config(tmp_path / "otelgate.yaml", environ=environ or {})


def test_compose_gateway_config_is_valid_and_scraped_where_it_serves(tmp_path):
    config = compose_config(tmp_path)
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
    (tmp_path / "read").write_text("read-token-made-for-this-test\n")
    text = text.replace("/secrets/read/token", str(tmp_path / "read"))
    (tmp_path / "prometheus.yml").write_text(text)
    (tmp_path / "rules").mkdir()
    result = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_services_mounts_and_ports_are_consistent(tmp_path):
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
    config = compose_config(tmp_path)
    published = {p.split(":")[1] for p in services["otelgate"]["ports"]}
    otlp = config.receivers["otlp"]
    assert isinstance(otlp, OtlpReceiverConfig)
    listen = {str(getattr(otlp.protocols, p).port) for p in ("grpc", "http")}
    assert listen | {str(config.admin.port)} <= published
    loki = config.exporters["loki"]
    assert getattr(loki, "endpoint", "").startswith("http://loki:")


def test_compose_stack_is_authenticated(tmp_path):
    """Auth on: the demo services send with the ingest token, Prometheus scrapes with the read
    token, the admin port is published on localhost only, Grafana has no anonymous admin."""
    config = compose_config(tmp_path)
    tokens = {t.token_file.parent.name: t for t in config.auth.tokens if t.token_file}
    assert tokens["ingest"].scopes == ["ingest"]
    assert tokens["read"].scopes == ["read"] and "admin" in tokens["admin"].scopes
    services = compose()["services"]
    for name in ("payments", "checkout", "frontend"):
        command = " ".join(services[name]["entrypoint"])
        assert "authorization=Bearer%20$$(cat /secrets/ingest/token)" in command, name
        # Each service mounts only the secrets it uses.
        assert services[name]["volumes"] == ["secret-ingest:/secrets/ingest:ro"], name
    scrape = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())["scrape_configs"]
    assert all(
        job["authorization"] == {"credentials_file": "/secrets/read/token"} for job in scrape
    )
    mounts = [v.split(":")[0] for v in services["prometheus"]["volumes"]]
    assert [m for m in mounts if m.startswith("secret-")] == ["secret-read"]
    assert f"127.0.0.1:{config.admin.port}:{config.admin.port}" in services["otelgate"]["ports"]
    grafana = services["grafana"]["environment"]
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert grafana.get("GF_AUTH_ANONYMOUS_ORG_ROLE") != "Admin"


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


def test_compose_stack_has_a_traffic_generator_hitting_the_frontend():
    services = compose()["services"]
    traffic = services["traffic"]
    command = traffic["entrypoint"]
    assert command[:3] == ["python", "-m", "gateway.demo.traffic"]
    url = command[command.index("--url") + 1]
    assert url == "http://frontend:8000" and "frontend" in traffic["depends_on"]
    assert "8000:8000" in services["frontend"]["ports"]


def test_docker_compose_validates_the_stack(tmp_path):
    """Debian's docker-compose parses and validates the file (no engine needed for `config`)."""
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose missing: .ci/run installs Debian's docker-compose package"
    result = subprocess.run(
        [tool, "-f", str(COMPOSE / "docker-compose.yaml"), "config", "--quiet"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    services = subprocess.run(
        [tool, "-f", str(COMPOSE / "docker-compose.yaml"), "config", "--services"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert set(services.stdout.split()) == set(compose()["services"])


def test_compose_gives_the_gateway_time_to_drain(tmp_path):
    config = compose_config(tmp_path)
    grace = compose()["services"]["otelgate"]["stop_grace_period"]
    assert grace.endswith("s") and float(grace[:-1]) > config.service.shutdown_timeout


def test_compose_switches_loki_for_elasticsearch_with_one_override_file(tmp_path):
    """`-f compose/elasticsearch.yaml` is the one change (docs/elasticsearch.md): the stack
    gains Elasticsearch and Kibana, and the gateway's logs go to its elasticsearch exporter."""
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose missing: .ci/run installs Debian's docker-compose package"
    files = ["-f", str(COMPOSE / "docker-compose.yaml"), "-f", str(COMPOSE / "elasticsearch.yaml")]
    merged = subprocess.run(
        [tool, *files, "config"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert merged.returncode == 0, merged.stdout + merged.stderr
    stack = yaml.safe_load(merged.stdout)["services"]
    assert {"elasticsearch", "kibana", "loki"} <= set(stack)
    environment = stack["otelgate"]["environment"]
    assert "elasticsearch" in stack["otelgate"]["depends_on"]
    switched = compose_config(tmp_path, environ=dict(environment))
    (logs,) = [p for name, p in switched.service.pipelines.items() if name == "logs"]
    assert logs.exporters == ["elasticsearch"]
    elasticsearch = switched.exporters["elasticsearch"]
    assert isinstance(elasticsearch, ElasticsearchExporterConfig)
    assert elasticsearch.endpoint == "http://elasticsearch:9200"
    (default,) = [p for n, p in compose_config(tmp_path).service.pipelines.items() if n == "logs"]
    assert default.exporters == ["loki"]
