"""gateway.config.loading: good files parsed to typed values with their defaults, YAML and
file problems, and the embedded default configuration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from exporters.file import FileExporterConfig, FileRotationSettings
from exporters.otlp.config import OtlpExporterConfig
from exporters.settings import ExporterSettings, QueueSettings, RetrySettings, TlsSettings
from gateway.config.issues import ConfigError
from gateway.config.loading import default_config, load_config, parse_config
from gateway.config.model import AdminConfig, Config, LoggingConfig, PipelineConfig
from gateway.processors.resource import ResourceProcessorConfig
from gateway.receivers.otlp import GrpcProtocolConfig, HttpProtocolConfig, OtlpReceiverConfig
from tests.gateway.config.helpers import issues_of, otlp_receiver

MINIMAL = """\
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "0.0.0.0:4317"}
      http: {endpoint: "0.0.0.0:4318"}
admin: {endpoint: "127.0.0.1:8888"}
exporters:
  otlp/downstream: {endpoint: "http://127.0.0.1:14318", protocol: http/protobuf}
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [otlp/downstream]}
"""


FULL = """\
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "10.0.0.1:14317", max_recv_msg_size_mib: 16}
      http:
        endpoint: "[::1]:14318"
        max_request_body_size: 1048576
        max_decompressed_size: 2097152
processors:
  resource:
    attributes:
      - {key: deployment.environment, value: prod, action: upsert}
      - {key: replicas, value: 3, action: insert}
      - {key: ratio, value: 0.25, action: update}
      - {key: canary, value: true, action: insert}
      - {key: secret, action: delete}
exporters:
  otlp/downstream:
    endpoint: "https://collector.example:4317"
    protocol: grpc
    compression: gzip
    headers: {authorization: "Bearer abc"}
    timeout: 2500ms
    tls: {ca_file: /etc/ca.pem, cert_file: /etc/c.pem, key_file: /etc/k.pem}
    sending_queue: {enabled: false, queue_size: 10, num_consumers: 2, on_full: drop}
    retry_on_failure:
      enabled: false
      initial_interval: 2s
      max_interval: 1m
      multiplier: 1.5
      randomization_factor: 0
      max_elapsed_time: 0
  file/traces:
    path: /var/lib/otelgate/traces.jsonl
    rotation: {max_megabytes: 7, max_backups: 0}
    format: json
service:
  pipelines:
    traces: {receivers: [otlp], processors: [resource], exporters: [otlp/downstream, file/traces]}
    logs/audit: {receivers: [otlp], exporters: [file/traces]}
  shutdown_timeout: 1h
admin: {endpoint: "0.0.0.0:9999"}
logging: {level: WARNING, format: json}
"""


def test_minimal_form_parses_to_typed_values() -> None:
    config = parse_config(MINIMAL, environ={})

    assert isinstance(config, Config)
    receiver = otlp_receiver(config)
    assert isinstance(receiver, OtlpReceiverConfig)
    grpc, http = receiver.protocols.grpc, receiver.protocols.http
    assert isinstance(grpc, GrpcProtocolConfig) and isinstance(http, HttpProtocolConfig)
    assert (grpc.host, grpc.port) == ("0.0.0.0", 4317)
    assert (http.host, http.port) == ("0.0.0.0", 4318)
    assert (config.admin.host, config.admin.port) == ("127.0.0.1", 8888)
    exporter = config.exporters["otlp/downstream"]
    assert isinstance(exporter, OtlpExporterConfig) and isinstance(exporter, ExporterSettings)
    assert exporter.protocol == "http/protobuf"
    assert exporter.endpoint == "http://127.0.0.1:14318"
    assert (exporter.host, exporter.port) == ("127.0.0.1", 14318)
    assert config.processors == {}
    assert config.service.pipelines == {
        "traces": PipelineConfig(receivers=["otlp"], processors=[], exporters=["otlp/downstream"])
    }


def test_minimal_form_has_documented_defaults() -> None:
    config = parse_config(MINIMAL, environ={})
    receiver = otlp_receiver(config).protocols
    assert receiver.grpc is not None and receiver.grpc.max_recv_msg_size_mib == 64
    assert receiver.http is not None
    assert receiver.http.max_request_body_size == 64 * 1024 * 1024
    assert receiver.http.max_decompressed_size == 64 * 1024 * 1024
    exporter = config.exporters["otlp/downstream"]
    assert isinstance(exporter, OtlpExporterConfig)
    assert (exporter.compression, exporter.headers, exporter.timeout, exporter.tls) == (
        "none",
        {},
        30.0,
        None,
    )
    assert exporter.max_request_bytes == 4 * 1024 * 1024
    assert exporter.sending_queue == QueueSettings(
        enabled=True, queue_size=100_000, num_consumers=4, on_full="refuse"
    )
    assert exporter.retry_on_failure == RetrySettings(
        enabled=True,
        initial_interval=1.0,
        max_interval=30.0,
        multiplier=2.0,
        randomization_factor=0.5,
        max_elapsed_time=300.0,
    )
    assert config.service.shutdown_timeout == 10.0
    assert config.logging == LoggingConfig(level="info", format="text")


def test_full_form_parses_every_key() -> None:
    config = parse_config(FULL, environ={})

    protocols = otlp_receiver(config).protocols
    assert protocols.grpc == GrpcProtocolConfig(endpoint="10.0.0.1:14317", max_recv_msg_size_mib=16)
    assert protocols.http is not None
    assert (protocols.http.host, protocols.http.port) == ("::1", 14318)
    assert protocols.http.max_request_body_size == 1048576
    assert protocols.http.max_decompressed_size == 2097152

    resource = config.processors["resource"]
    assert isinstance(resource, ResourceProcessorConfig)
    assert [(a.key, a.value, a.action) for a in resource.attributes] == [
        ("deployment.environment", "prod", "upsert"),
        ("replicas", 3, "insert"),
        ("ratio", 0.25, "update"),
        ("canary", True, "insert"),
        ("secret", None, "delete"),
    ]
    assert type(resource.attributes[1].value) is int
    assert type(resource.attributes[3].value) is bool

    otlp = config.exporters["otlp/downstream"]
    assert isinstance(otlp, OtlpExporterConfig)
    assert (otlp.protocol, otlp.compression, otlp.timeout) == ("grpc", "gzip", 2.5)
    assert otlp.headers == {"authorization": "Bearer abc"}
    assert otlp.tls == TlsSettings(
        insecure=False,
        ca_file="/etc/ca.pem",
        cert_file="/etc/c.pem",
        key_file="/etc/k.pem",
        insecure_skip_verify=False,
    )
    assert (otlp.host, otlp.port) == ("collector.example", 4317)
    assert otlp.sending_queue == QueueSettings(
        enabled=False, queue_size=10, num_consumers=2, on_full="drop"
    )
    assert otlp.retry_on_failure == RetrySettings(
        enabled=False,
        initial_interval=2.0,
        max_interval=60.0,
        multiplier=1.5,
        randomization_factor=0.0,
        max_elapsed_time=0.0,
    )

    file = config.exporters["file/traces"]
    assert isinstance(file, FileExporterConfig) and isinstance(file, ExporterSettings)
    assert file.path == "/var/lib/otelgate/traces.jsonl"
    assert file.rotation == FileRotationSettings(max_megabytes=7, max_backups=0)
    assert file.format == "json"

    assert list(config.service.pipelines) == ["traces", "logs/audit"]
    traces = config.service.pipelines["traces"]
    assert traces.processors == ["resource"]
    assert traces.exporters == ["otlp/downstream", "file/traces"]
    assert config.service.shutdown_timeout == 3600.0
    assert config.admin == AdminConfig(endpoint="0.0.0.0:9999")
    assert config.logging == LoggingConfig(level="warning", format="json")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty configuration"),
        ("# only a comment\n", "empty configuration"),
        ("{}\n", "empty configuration"),
        ("- receivers\n", "the top level must be a mapping"),
        ("just a string\n", "the top level must be a mapping"),
    ],
)
def test_whole_file_problems(text: str, message: str) -> None:
    assert issues_of(text) == [("<string>", message)]


def test_yaml_syntax_error_reports_line_and_column() -> None:
    text = "receivers:\n  otlp:\n    protocols:\n      grpc: {endpoint: [unclosed\nservice: {}\n"
    [(path, message)] = issues_of(text)
    assert path == "<string>"
    assert message.startswith("invalid YAML at line 5, column ")


def test_yaml_indentation_error_reports_its_line() -> None:
    text = "receivers:\n  otlp:\n    protocols: {}\n   bad: indentation\n"
    [(_, message)] = issues_of(text)
    assert message.startswith("invalid YAML at line 4, column 4:")


def test_duplicate_keys_are_errors_not_silently_merged() -> None:
    text = (
        "exporters:\n"
        "  file: {path: a}\n"
        "  otlp/down: {endpoint: 'c:1'}\n"
        "  file: {path: b}\n"
        "service: {}\n"
    )
    assert issues_of(text) == [
        ("<string>", "invalid YAML at line 4, column 3: duplicate key 'file' (first at line 2)")
    ]


def test_yaml_merge_keys_still_work() -> None:
    text = (
        "exporters:\n"
        "  otlp/a: &common {endpoint: 'c:1', compression: gzip}\n"
        "  otlp/b: {<<: *common, endpoint: 'd:2'}\n"
        "receivers: {otlp: {protocols: {grpc: }}}\n"
        "service: {pipelines: {logs: {receivers: [otlp], exporters: [otlp/a, otlp/b]}}}\n"
    )
    config = parse_config(text, environ={})
    b = config.exporters["otlp/b"]
    assert isinstance(b, OtlpExporterConfig) and (b.endpoint, b.compression) == ("d:2", "gzip")


def test_load_config_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "otelgate.yaml"
    path.write_text(MINIMAL, encoding="utf-8")
    assert load_config(path, environ={}) == parse_config(MINIMAL, environ={})
    assert load_config(str(path), environ={}).admin.port == 8888


def test_load_config_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("receivers:\n  otlp: [\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    [issue] = info.value.errors
    assert issue.path == str(path)
    assert issue.message.startswith("invalid YAML at line 3, column 1:")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.yaml", None, "configuration file not found"),
        ("empty.yaml", b"", "empty configuration"),
        ("latin1.yaml", b"receivers: \xe9\n", "cannot read: not UTF-8 text"),
        ("adir", "dir", "cannot read: Is a directory"),
    ],
)
def test_load_config_file_problems(
    tmp_path: Path, name: str, content: bytes | str | None, message: str
) -> None:
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert [(i.path, i.message) for i in info.value.errors] == [(str(path), message)]


def test_default_config() -> None:
    config = default_config(environ={})
    protocols = otlp_receiver(config).protocols
    assert list(config.receivers) == ["otlp", "hostmetrics"]
    assert protocols.grpc is not None and protocols.grpc.endpoint == "0.0.0.0:4317"
    assert protocols.http is not None and protocols.http.endpoint == "0.0.0.0:4318"
    assert config.admin.endpoint == "127.0.0.1:8888"
    files = {k: v for k, v in config.exporters.items() if isinstance(v, FileExporterConfig)}
    assert {k: v.path for k, v in files.items()} == {
        "file/traces": os.path.join("./otelgate-data", "traces.jsonl"),
        "file/metrics": os.path.join("./otelgate-data", "metrics.jsonl"),
        "file/logs": os.path.join("./otelgate-data", "logs.jsonl"),
    }
    assert set(config.exporters) - set(files) == {"prometheus", "store"}
    assert {
        pid: (p.receivers, p.processors, p.exporters) for pid, p in config.service.pipelines.items()
    } == {
        "traces": (["otlp"], ["spanmetrics"], ["file/traces", "store"]),
        "metrics": (["otlp", "hostmetrics"], [], ["file/metrics", "prometheus"]),
        "logs": (["otlp"], [], ["file/logs", "store"]),
    }
