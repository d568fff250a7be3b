"""Which component runs where with workers, ``service.workers`` and ``--workers``, and the
ports the supervisor reserves for its workers."""

from __future__ import annotations

import socket

import pytest
import yaml

from gateway.cli import build_parser
from gateway.config.issues import ConfigError
from gateway.config.loading import default_config, parse_config
from gateway.listeners.http_server import bind
from gateway.workers.endpoints import reserve, with_endpoints
from gateway.workers.roles import (
    usable_cpus,
    worker_changes,
    worker_count,
    worker_exporters,
    worker_pipeline,
)

CONFIG = """
receivers:
  otlp: {protocols: {grpc: {endpoint: "127.0.0.1:0"}, http: {endpoint: "127.0.0.1:0"}}}
  hostmetrics: {}
processors:
  spanmetrics: {}
exporters:
  otlp/down: {endpoint: "http://127.0.0.1:1", protocol: http/protobuf}
  otlp/mixed: {endpoint: "http://127.0.0.1:1", protocol: http/protobuf}
  otlp/unused: {endpoint: "http://127.0.0.1:1", protocol: http/protobuf}
  store: {}
  prometheus: {}
service:
  workers: 2
  pipelines:
    traces: {receivers: [otlp], processors: [spanmetrics], exporters: [otlp/mixed]}
    traces/forward: {receivers: [otlp], exporters: [otlp/down]}
    logs: {receivers: [otlp], exporters: [otlp/down, store]}
    metrics: {receivers: [otlp, hostmetrics], exporters: [prometheus]}
"""


def _config(text: str = CONFIG, **service: object):
    data = yaml.safe_load(text)
    data["service"].update(service)
    return parse_config(yaml.safe_dump(data), environ={})


def test_a_pipeline_runs_in_the_workers_only_when_all_of_it_can():
    config = _config()
    where = {name: worker_pipeline(config, name) for name in config.service.pipelines}
    # span metrics and the store keep state: their pipelines run whole in the supervisor
    assert where == {"traces": False, "traces/forward": True, "logs": False, "metrics": False}
    assert worker_exporters(config) == ["otlp/down"]


def test_cloudwatch_metrics_run_in_the_supervisor_and_its_logs_in_the_workers():
    """Its cumulative-to-delta state must see every point of a series in one process."""
    data = yaml.safe_load(CONFIG)
    data["exporters"] = {"cloudwatch": {"region": "eu-west-1", "log_group_name": "g"}}
    data["service"]["pipelines"] = {
        signal: {"receivers": ["otlp"], "exporters": ["cloudwatch"]}
        for signal in ("logs", "metrics")
    }
    config = parse_config(yaml.safe_dump(data), environ={})
    where = {name: worker_pipeline(config, name) for name in config.service.pipelines}
    assert where == {"logs": True, "metrics": False}


@pytest.mark.parametrize(
    ("value", "expected"), [(1, 1), (3, 3), ("auto", "auto"), ("AUTO", "auto")]
)
def test_service_workers_takes_a_number_or_auto(value, expected):
    assert _config(workers=value).service.workers == expected


@pytest.mark.parametrize("value", [0, 257, "many", True])
def test_service_workers_refuses_anything_else_naming_the_key(value):
    with pytest.raises(ConfigError) as caught:
        _config(workers=value)
    assert "service.workers" in str(caught.value)


def test_auto_means_the_cpus_this_process_may_use():
    assert worker_count("auto") == usable_cpus() >= 1
    assert worker_count(4) == 4
    assert default_config({}).service.workers == 1


def test_the_run_command_takes_workers():
    parser = build_parser()
    assert parser.parse_args(["run", "--workers", "auto"]).workers == "auto"
    assert parser.parse_args(["run", "--workers", "3"]).workers == 3
    assert parser.parse_args(["run"]).workers is None
    for bad in ("0", "x", "1000"):
        with pytest.raises(SystemExit):
            parser.parse_args(["run", "--workers", bad])


def test_reserved_ports_are_real_shared_by_listeners_and_take_no_connections():
    config = _config()
    endpoints, held = reserve(config)
    try:
        assert set(endpoints) == {"otlp"}
        http = endpoints["otlp"]["http"]
        assert http.startswith("127.0.0.1:") and not http.endswith(":0")
        listeners = [bind(http, reuse_port=True) for _ in range(2)]  # two workers, one port
        try:
            port = int(http.rsplit(":", 1)[1])
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass  # taken by one of the listeners, not by the reservation
        finally:
            for listener in listeners:
                listener.close()
        moved = with_endpoints(config, endpoints)
        protocols = moved.receivers["otlp"].protocols  # type: ignore[attr-defined]
        assert (protocols.grpc.endpoint, protocols.http.endpoint) == (
            endpoints["otlp"]["grpc"], http,
        )  # fmt: skip
        assert moved.receivers["hostmetrics"] == config.receivers["hostmetrics"]
    finally:
        for sock in held:
            sock.close()


def test_a_port_another_program_holds_is_a_clear_error():
    other = bind("127.0.0.1:0")  # no SO_REUSEPORT: the port is not shareable
    try:
        port = other.getsockname()[1]
        text = CONFIG.replace(
            'http: {endpoint: "127.0.0.1:0"}', f'http: {{endpoint: "127.0.0.1:{port}"}}'
        )
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            reserve(_config(text))
    finally:
        other.close()


def test_a_reload_replaces_workers_only_for_what_they_run():
    old = _config()
    syslog = yaml.safe_load(CONFIG)
    syslog["receivers"]["syslog"] = {"udp": {"endpoint": "127.0.0.1:0"}}
    syslog["service"]["pipelines"]["logs"]["receivers"].append("syslog")
    with_syslog = parse_config(yaml.safe_dump(syslog), environ={})
    # a new syslog receiver runs in the supervisor; the pipeline change reaches the workers
    assert worker_changes(old, with_syslog) == ["service"]
    tuned = yaml.safe_load(CONFIG)
    tuned["receivers"]["otlp"]["protocols"]["http"]["max_request_body_size"] = 1024
    assert worker_changes(old, parse_config(yaml.safe_dump(tuned), environ={})) == ["receivers"]
    assert worker_changes(old, _config()) == []
