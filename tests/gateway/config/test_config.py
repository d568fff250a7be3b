"""gateway.config: typed values, defaults, durations, env expansion and every error's path."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporters.file import FileExporterConfig, FileRotationSettings
from exporters.otlp.config import OtlpExporterConfig
from exporters.settings import ExporterSettings, QueueSettings, RetrySettings, TlsSettings
from gateway.components import REGISTRY
from gateway.config.issues import ConfigError, ConfigIssue
from gateway.config.loading import default_config, load_config, parse_config
from gateway.config.model import (
    KIND_OF_SECTION,
    AdminConfig,
    Config,
    LoggingConfig,
    PipelineConfig,
    ServiceConfig,
)
from gateway.config.overrides import apply_env_overrides
from gateway.config.values import parse_duration
from gateway.processors.resource import ResourceAction, ResourceProcessorConfig
from gateway.receivers.otlp import GrpcProtocolConfig, HttpProtocolConfig, OtlpReceiverConfig
from gateway.registry import component_type

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

# A small valid configuration that the bad cases below change in one place or a few.
BASE: dict[str, Any] = {
    "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "0.0.0.0:4317"}}}},
    "exporters": {
        "file": {"path": "/tmp/otelgate/traces.jsonl"},
        "otlp/down": {"endpoint": "collector:4317"},
    },
    "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file"]}}},
}
DELETE = object()


def otlp_receiver(config: Config) -> OtlpReceiverConfig:
    """The ``otlp`` receiver, typed (receivers may be of several types)."""
    receiver = config.receivers["otlp"]
    assert isinstance(receiver, OtlpReceiverConfig)
    return receiver


def known(section: str) -> str:
    """The known component types of a section, as the error message lists them."""
    return ", ".join(sorted(REGISTRY.types(KIND_OF_SECTION[section])))


def patched(*changes: tuple[str, Any]) -> str:
    """BASE as YAML with each ``(dotted.path, value)`` set (``DELETE`` removes the key)."""
    doc = copy.deepcopy(BASE)
    for path, value in changes:
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node.setdefault(key, {})
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return yaml.safe_dump(doc, sort_keys=False)


def issues_of(text: str, environ: dict[str, str] | None = None) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, environ=environ or {})
    return [(issue.path, issue.message) for issue in info.value.errors]


# --- good files -------------------------------------------------------------------------------


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


@pytest.mark.parametrize("protocols", ["grpc:\n", "grpc: {}\n", "grpc: null\n"])
def test_protocol_given_as_null_or_empty_means_defaults(protocols: str) -> None:
    text = (
        "receivers:\n  otlp:\n    protocols:\n      " + protocols + "exporters: {file: {path: x}}\n"
        "service: {pipelines: {metrics: {receivers: [otlp], exporters: [file]}}}\n"
    )
    receiver = otlp_receiver(parse_config(text, environ={}))
    assert receiver.protocols.grpc == GrpcProtocolConfig()
    assert receiver.protocols.grpc.endpoint == "0.0.0.0:4317"
    assert receiver.protocols.http is None


@pytest.mark.parametrize(
    ("endpoint", "protocol", "tls", "host", "port"),
    [
        ("collector:4317", "grpc", None, "collector", 4317),
        ("collector:4317", "grpc", {"insecure": True}, "collector", 4317),
        ("http://collector:4317", "grpc", None, "collector", 4317),
        ("https://collector:4317", "grpc", None, "collector", 4317),
        ("[::1]:4317", "grpc", None, "::1", 4317),
        ("http://collector", "http/protobuf", None, "collector", 80),
        ("https://collector/otlp", "http/protobuf", None, "collector", 443),
        ("https://collector:8443", "http/protobuf", {"insecure": True}, "collector", 8443),
    ],
)
def test_otlp_exporter_endpoint_forms(
    endpoint: str, protocol: str, tls: dict[str, Any] | None, host: str, port: int
) -> None:
    exporter = {"endpoint": endpoint, "protocol": protocol, "tls": tls}
    config = parse_config(patched(("exporters.otlp/down", exporter)), environ={})
    otlp = config.exporters["otlp/down"]
    assert isinstance(otlp, OtlpExporterConfig)
    assert (otlp.host, otlp.port) == (host, port)


@pytest.mark.parametrize(
    ("component_id", "expected"),
    [("otlp", "otlp"), ("otlp/downstream", "otlp"), ("file/a/b", "file"), ("", "")],
)
def test_component_type(component_id: str, expected: str) -> None:
    assert component_type(component_id) == expected


# --- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (5, 5.0),
        (1.5, 1.5),
        (0, 0.0),
        ("3", 3.0),
        ("0.25", 0.25),
        ("5s", 5.0),
        ("500ms", 0.5),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        ("1.5h", 5400.0),
        ("250us", 0.00025),
        ("100ns", 1e-7),
        (" 10s ", 10.0),
    ],
)
def test_parse_duration(value: Any, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value", ["", "abc", "5x", "s", "5 s", "1s garbage", "-1s", -1, "inf", "nan", True, None, [1]]
)
def test_parse_duration_rejects_garbage(value: Any) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


def test_duration_in_config_accepts_strings_and_reports_garbage() -> None:
    config = parse_config(patched(("exporters.otlp/down.timeout", "750ms")), environ={})
    assert config.exporters["otlp/down"].model_dump()["timeout"] == 0.75
    assert issues_of(patched(("exporters.otlp/down.timeout", "soon"))) == [
        (
            "exporters.otlp/down.timeout",
            "invalid duration 'soon' (use seconds, e.g. 5 or 0.5, or 500ms, 5s, 2m, 1h)",
        )
    ]


# --- environment expansion --------------------------------------------------------------------

ENV_CASES = [
    # (yaml value of the grpc endpoint, environ, expected endpoint)
    ("${env:HOST}:4317", {"HOST": "10.1.2.3"}, "10.1.2.3:4317"),
    ("${HOST}:4317", {"HOST": "10.1.2.3"}, "10.1.2.3:4317"),
    ("${env:HOST:-127.0.0.1}:4317", {}, "127.0.0.1:4317"),
    ("${env:HOST:-127.0.0.1}:4317", {"HOST": ""}, "127.0.0.1:4317"),
    ("${env:HOST:-127.0.0.1}:4317", {"HOST": "10.9.9.9"}, "10.9.9.9:4317"),
    ("${HOST:-localhost}:${PORT}", {"PORT": "9"}, "localhost:9"),
    ("${env:EP:-0.0.0.0:4317}", {}, "0.0.0.0:4317"),
]


@pytest.mark.parametrize(("value", "environ", "expected"), ENV_CASES)
def test_env_expansion(value: str, environ: dict[str, str], expected: str) -> None:
    text = patched(("receivers.otlp.protocols.grpc.endpoint", value))
    grpc = otlp_receiver(parse_config(text, environ=environ)).protocols.grpc
    assert grpc is not None and grpc.endpoint == expected


def test_env_expansion_coerces_numbers_through_the_model() -> None:
    text = patched(
        ("receivers.otlp.protocols.grpc.max_recv_msg_size_mib", "${env:SIZE}"),
        ("exporters.file.rotation", {"max_megabytes": "${env:MB:-12}"}),
    )
    config = parse_config(text, environ={"SIZE": "16"})
    grpc = otlp_receiver(config).protocols.grpc
    assert grpc is not None and grpc.max_recv_msg_size_mib == 16
    file = config.exporters["file"]
    assert isinstance(file, FileExporterConfig) and file.rotation.max_megabytes == 12


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/data/$${env:X}/t.jsonl", "/data/${env:X}/t.jsonl"),
        ("/data/$${HOME}", "/data/${HOME}"),
        ("/cost/$5/$$/x", "/cost/$5/$$/x"),
        ("/a/${env:X}/$${env:X}", "/a/one/${env:X}"),
    ],
)
def test_env_escapes(value: str, expected: str) -> None:
    config = parse_config(patched(("exporters.file.path", value)), environ={"X": "one"})
    assert config.exporters["file"].model_dump()["path"] == expected


def test_env_expansion_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTELGATE_TEST_FILE", "/from/os/environ.jsonl")
    for name in ("OTELGATE_ADMIN_ENDPOINT", "OTELGATE_GRPC_ENDPOINT", "OTELGATE_HTTP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTELGATE_LOG_LEVEL", raising=False)
    config = parse_config(patched(("exporters.file.path", "${env:OTELGATE_TEST_FILE}")))
    assert config.exporters["file"].model_dump()["path"] == "/from/os/environ.jsonl"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "exporters.file.path",
            "${env:NOT_SET}",
            "environment variable NOT_SET is not set (use ${env:NOT_SET:-default} to give a "
            "default)",
        ),
        (
            "receivers.otlp.protocols.grpc.endpoint",
            "${PORTLESS}",
            "environment variable PORTLESS is not set (use ${env:PORTLESS:-default} to give a "
            "default)",
        ),
        (
            "exporters.file.path",
            "${file:/etc/x}",
            "invalid reference '${file:/etc/x}': expected ${env:NAME} or ${env:NAME:-default}",
        ),
        (
            "exporters.file.path",
            "${env:1BAD}",
            "invalid reference '${env:1BAD}': expected ${env:NAME} or ${env:NAME:-default}",
        ),
        (
            "exporters.file.path",
            "/x/${env:OPEN",
            "unterminated '${' (write '$${' for a literal '${')",
        ),
    ],
)
def test_env_expansion_errors_have_the_value_path(path: str, value: str, message: str) -> None:
    # Exactly one issue: the unexpanded value is not reported a second time by the model.
    assert issues_of(patched((path, value))) == [(path, message)]


def test_missing_env_in_a_list_is_reported_once_at_its_index() -> None:
    text = patched(("service.pipelines.traces.exporters", ["file", "${env:EXPORTER}"]))
    assert [path for path, _ in issues_of(text)] == ["service.pipelines.traces.exporters[1]"]


def test_env_expansion_leaves_keys_alone() -> None:
    text = patched(("exporters.otlp/down.headers", {"${env:K}": "${env:V}"}))
    otlp = parse_config(text, environ={"K": "nope", "V": "secret"}).exporters["otlp/down"]
    assert isinstance(otlp, OtlpExporterConfig)
    assert otlp.headers == {"${env:K}": "secret"}


# --- bad files: each reports exactly these paths ----------------------------------------------

BAD_CASES: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "unknown top-level key",
        patched(("receiverz", {})),
        [("receiverz", "unknown key (did you mean 'receivers'?)")],
    ),
    (
        "unknown key in a protocol",
        patched(("receivers.otlp.protocols.grpc.max_msg", 4)),
        [("receivers.otlp.protocols.grpc.max_msg", "unknown key")],
    ),
    (
        "unknown key three levels into an exporter",
        patched(("exporters.file.rotation", {"max_files": 3})),
        [("exporters.file.rotation.max_files", "unknown key")],
    ),
    (
        "unknown key in a pipeline",
        patched(("service.pipelines.traces.procesors", [])),
        [("service.pipelines.traces.procesors", "unknown key")],
    ),
    (
        "unknown key in a list item",
        patched(
            (
                "processors.resource.attributes",
                [{"key": "a", "value": 1, "action": "insert", "x": 1}],
            )
        ),
        [("processors.resource.attributes[0].x", "unknown key")],
    ),
    (
        "unknown key in admin",
        patched(("admin.port", 8888)),
        [("admin.port", "unknown key")],
    ),
    (
        "wrong type: integer",
        patched(("exporters.file.sending_queue", {"queue_size": "lots"})),
        [("exporters.file.sending_queue.queue_size", "must be a whole number (got 'lots')")],
    ),
    (
        "wrong type: mapping",
        patched(("exporters.file.rotation", [1, 2])),
        [("exporters.file.rotation", "must be a mapping (got a list)")],
    ),
    (
        "wrong type: boolean",
        patched(("exporters.otlp/down.tls", {"insecure": "maybe"})),
        [("exporters.otlp/down.tls.insecure", "must be true or false (got 'maybe')")],
    ),
    (
        "wrong type: header value",
        patched(("exporters.otlp/down.headers", {"x-tenant": 7})),
        [("exporters.otlp/down.headers.x-tenant", "must be a string (got 7)")],
    ),
    (
        "wrong type: section",
        patched(("exporters", ["file"])),
        [
            ("exporters", "must be a mapping of exporter id to settings"),
        ],
    ),
    (
        "receiver port out of range",
        patched(("receivers.otlp.protocols.grpc.endpoint", "0.0.0.0:70000")),
        [
            (
                "receivers.otlp.protocols.grpc.endpoint",
                "port '70000' in '0.0.0.0:70000' must be a number in 0..65535",
            )
        ],
    ),
    (
        "receiver endpoint without port",
        patched(("receivers.otlp.protocols.grpc.endpoint", "localhost")),
        [
            (
                "receivers.otlp.protocols.grpc.endpoint",
                "'localhost' must be host:port, e.g. 0.0.0.0:4317",
            )
        ],
    ),
    (
        "admin endpoint without host",
        patched(("admin", {"endpoint": ":8888"})),
        [("admin.endpoint", "':8888' must be host:port, e.g. 0.0.0.0:4317")],
    ),
    (
        "admin port not a number",
        patched(("admin", {"endpoint": "127.0.0.1:http"})),
        [("admin.endpoint", "port 'http' in '127.0.0.1:http' must be a number in 0..65535")],
    ),
    (
        "bad host characters",
        patched(("receivers.otlp.protocols.grpc.endpoint", "my host:4317")),
        [
            (
                "receivers.otlp.protocols.grpc.endpoint",
                "'my host' in 'my host:4317' is not a valid host name or address",
            )
        ],
    ),
    (
        "otlp exporter port 0",
        patched(("exporters.otlp/down.endpoint", "collector:0")),
        [
            (
                "exporters.otlp/down.endpoint",
                "port '0' in 'collector:0' must be a number in 1..65535",
            )
        ],
    ),
    (
        "http/protobuf endpoint is not a URL",
        patched(
            (
                "exporters.otlp/down",
                {"endpoint": "collector:4318", "protocol": "http/protobuf"},
            )
        ),
        [
            (
                "exporters.otlp/down.endpoint",
                "'collector:4318' must be an http:// or https:// URL for http/protobuf",
            )
        ],
    ),
    (
        "http/protobuf endpoint names a signal path",
        patched(
            (
                "exporters.otlp/down",
                {"endpoint": "http://collector:4318/v1/traces", "protocol": "http/protobuf"},
            )
        ),
        [
            (
                "exporters.otlp/down.endpoint",
                "'http://collector:4318/v1/traces' must be a base URL; "
                "/v1/traces etc. are appended",
            )
        ],
    ),
    (
        "grpc endpoint with another scheme",
        patched(("exporters.otlp/down.endpoint", "ftp://collector:4317")),
        [
            (
                "exporters.otlp/down.endpoint",
                "'ftp://collector:4317' must be host:port, optionally after http(s)://",
            )
        ],
    ),
    (
        "otlp exporter without endpoint, bad protocol",
        patched(("exporters.otlp/down", {"protocol": "thrift"})),
        [
            (
                "exporters.otlp/down.protocol",
                "must be 'grpc' or 'http/protobuf' (got 'thrift')",
            ),
            ("exporters.otlp/down.endpoint", "is required"),
        ],
    ),
    (
        "unknown exporter type",
        patched(("exporters.kafka/x", {"brokers": ["a:9092"]})),
        [("exporters.kafka/x", f"unknown exporter type 'kafka' (known: {known('exporters')})")],
    ),
    (
        "unknown receiver type",
        patched(("receivers.jaeger", {})),
        [("receivers.jaeger", f"unknown receiver type 'jaeger' (known: {known('receivers')})")],
    ),
    (
        "unknown processor type",
        patched(("processors.batch", None)),
        [("processors.batch", f"unknown processor type 'batch' (known: {known('processors')})")],
    ),
    (
        "invalid component id",
        patched(("exporters.otlp/", {"endpoint": "a:1"})),
        [("exporters.otlp/", "invalid id (want type or type/name)")],
    ),
    (
        "undefined exporter",
        patched(("service.pipelines.traces.exporters", ["otlp/x"])),
        [
            (
                "service.pipelines.traces.exporters[0]",
                "exporter 'otlp/x' is not defined under 'exporters'",
            )
        ],
    ),
    (
        "undefined receiver and processor",
        patched(
            ("service.pipelines.traces.receivers", ["otlp", "otlp/b"]),
            ("service.pipelines.traces.processors", ["resource"]),
        ),
        [
            (
                "service.pipelines.traces.receivers[1]",
                "receiver 'otlp/b' is not defined under 'receivers'",
            ),
            (
                "service.pipelines.traces.processors[0]",
                "processor 'resource' is not defined under 'processors'",
            ),
        ],
    ),
    (
        "the same id twice in one list",
        patched(("service.pipelines.traces.exporters", ["file", "otlp/down", "file"])),
        [("service.pipelines.traces.exporters[2]", "'file' is listed twice")],
    ),
    (
        "pipeline id not a signal",
        patched(("service.pipelines.foo", {"receivers": ["otlp"], "exporters": ["file"]})),
        [
            (
                "service.pipelines.foo",
                "pipeline id must be traces, metrics or logs, optionally with /name",
            )
        ],
    ),
    (
        "pipeline id with empty name",
        patched(("service.pipelines.logs/", {"receivers": ["otlp"], "exporters": ["file"]})),
        [
            (
                "service.pipelines.logs/",
                "pipeline id must be traces, metrics or logs, optionally with /name",
            )
        ],
    ),
    (
        "empty exporter list, missing receivers",
        patched(("service.pipelines.traces", {"exporters": []})),
        [
            ("service.pipelines.traces.receivers", "is required"),
            ("service.pipelines.traces.exporters", "must not be empty"),
        ],
    ),
    (
        "no pipelines",
        patched(("service.pipelines", {})),
        [("service.pipelines", "must not be empty")],
    ),
    (
        "no service",
        patched(("service", DELETE)),
        [("service", "is required (it defines the pipelines)")],
    ),
    (
        "no protocol",
        patched(("receivers.otlp.protocols", {})),
        [("receivers.otlp.protocols", "at least one protocol (grpc or http) must be set")],
    ),
    (
        "unknown protocol",
        patched(("receivers.otlp.protocols.thrift", {})),
        [("receivers.otlp.protocols.thrift", "unknown key")],
    ),
    (
        "resource actions",
        patched(
            (
                "processors.resource.attributes",
                [
                    {"key": "a", "action": "upsert"},
                    {"key": "b", "value": 1, "action": "delete"},
                    {"key": "c", "value": 1, "action": "rename"},
                    {"key": "d", "value": [1], "action": "insert"},
                    {"key": "", "value": "x", "action": "insert"},
                ],
            )
        ),
        [
            ("processors.resource.attributes[0]", "value is required for action 'upsert'"),
            ("processors.resource.attributes[1]", "value must not be given for action 'delete'"),
            (
                "processors.resource.attributes[2].action",
                "must be 'insert', 'upsert', 'update' or 'delete' (got 'rename')",
            ),
            ("processors.resource.attributes[3].value", "must be a string, number or boolean"),
            ("processors.resource.attributes[4].key", "must not be empty"),
        ],
    ),
    (
        "resource processor without attributes",
        patched(("processors.resource", {"attributes": []})),
        [("processors.resource.attributes", "must not be empty")],
    ),
    (
        "queue and retry bounds",
        patched(
            (
                "exporters.file.sending_queue",
                {"queue_size": 0, "num_consumers": 0, "on_full": "block"},
            ),
            (
                "exporters.file.retry_on_failure",
                {
                    "multiplier": 0.5,
                    "randomization_factor": 1.5,
                    "initial_interval": "10s",
                    "max_interval": "5s",
                    "max_elapsed_time": "-1s",
                },
            ),
        ),
        [
            ("exporters.file.sending_queue.queue_size", "must be greater than 0 (got 0)"),
            ("exporters.file.sending_queue.num_consumers", "must be at least 1 (got 0)"),
            ("exporters.file.sending_queue.on_full", "must be 'refuse' or 'drop' (got 'block')"),
            (
                "exporters.file.retry_on_failure.max_interval",
                "must be at least initial_interval (10.0)",
            ),
            ("exporters.file.retry_on_failure.multiplier", "must be at least 1 (got 0.5)"),
            ("exporters.file.retry_on_failure.randomization_factor", "must be at most 1 (got 1.5)"),
            (
                "exporters.file.retry_on_failure.max_elapsed_time",
                "invalid duration '-1s' (use seconds, e.g. 5 or 0.5, or 500ms, 5s, 2m, 1h)",
            ),
        ],
    ),
    (
        "zero timeout",
        patched(("exporters.otlp/down.timeout", 0)),
        [("exporters.otlp/down.timeout", "must be greater than 0 (got 0.0)")],
    ),
    (
        "tls cert without key",
        patched(("exporters.otlp/down.tls", {"cert_file": "/c.pem"})),
        [("exporters.otlp/down.tls", "cert_file and key_file must be given together")],
    ),
    (
        "file exporter",
        patched(
            (
                "exporters.file",
                {"format": "csv", "rotation": {"max_megabytes": 0, "max_backups": -1}},
            )
        ),
        [
            ("exporters.file.path", "is required"),
            ("exporters.file.rotation.max_megabytes", "must be greater than 0 (got 0)"),
            ("exporters.file.rotation.max_backups", "must be at least 0 (got -1)"),
            ("exporters.file.format", "must be 'json' (got 'csv')"),
        ],
    ),
    (
        "logging",
        patched(("logging", {"level": "loud", "format": "xml"})),
        [
            ("logging.level", "must be 'debug', 'info', 'warning' or 'error' (got 'loud')"),
            ("logging.format", "must be 'text' or 'json' (got 'xml')"),
        ],
    ),
    (
        "shutdown timeout garbage",
        patched(("service.shutdown_timeout", "later")),
        [
            (
                "service.shutdown_timeout",
                "invalid duration 'later' (use seconds, e.g. 5 or 0.5, or 500ms, 5s, 2m, 1h)",
            )
        ],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [case[1:] for case in BAD_CASES], ids=[case[0] for case in BAD_CASES]
)
def test_bad_config_reports_exact_paths(text: str, expected: list[tuple[str, str]]) -> None:
    assert sorted(issues_of(text)) == sorted(expected)


def test_several_errors_in_different_sections_are_all_reported() -> None:
    text = patched(
        ("receivers.otlp.protocols.grpc.endpoint", "nowhere"),
        ("processors.resource", {"attributes": [{"key": "k", "action": "upsert"}]}),
        ("exporters.kafka", {}),
        ("exporters.file.sending_queue", {"queue_size": -5}),
        ("exporters.otlp/down.compression", "zstd"),
        ("service.pipelines.metrics", {"receivers": ["otlp"], "exporters": ["nope"]}),
        ("admin", {"endpoint": "127.0.0.1:99999"}),
        ("extra", 1),
    )
    paths = [path for path, _ in issues_of(text)]
    assert sorted(paths) == sorted(
        [
            "extra",
            "receivers.otlp.protocols.grpc.endpoint",
            "processors.resource.attributes[0]",
            "exporters.kafka",
            "exporters.file.sending_queue.queue_size",
            "exporters.otlp/down.compression",
            "admin.endpoint",
            "service.pipelines.metrics.exporters[0]",
        ]
    )


def test_a_failing_component_still_counts_as_defined() -> None:
    # The exporter is invalid, but the pipeline reference to it is not a second error.
    text = patched(("exporters.file.format", "csv"))
    assert [path for path, _ in issues_of(text)] == ["exporters.file.format"]


def test_config_error_str_lists_every_issue_on_its_own_line() -> None:
    error = ConfigError([ConfigIssue("a.b", "is required"), ConfigIssue("c[0]", "unknown key")])
    assert str(error) == "a.b: is required\nc[0]: unknown key"
    assert error.errors == [ConfigIssue("a.b", "is required"), ConfigIssue("c[0]", "unknown key")]


# --- whole-file problems ----------------------------------------------------------------------


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


# --- default configuration and environment overrides -----------------------------------------


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
    assert set(config.exporters) - set(files) == {"prometheus"}
    assert {
        pid: (p.receivers, p.processors, p.exporters) for pid, p in config.service.pipelines.items()
    } == {
        "traces": (["otlp"], ["spanmetrics"], ["file/traces"]),
        "metrics": (["otlp", "hostmetrics"], [], ["file/metrics", "prometheus"]),
        "logs": (["otlp"], [], ["file/logs"]),
    }


def test_default_config_data_dir_and_overrides() -> None:
    environ = {
        "OTELGATE_DATA_DIR": "/srv/${weird}",
        "OTELGATE_ADMIN_ENDPOINT": "0.0.0.0:9000",
        "OTELGATE_GRPC_ENDPOINT": "127.0.0.1:5317",
        "OTELGATE_HTTP_ENDPOINT": "127.0.0.1:5318",
        "OTELGATE_LOG_LEVEL": "DEBUG",
    }
    config = default_config(environ)
    assert config.exporters["file/logs"].model_dump()["path"] == "/srv/${weird}/logs.jsonl"
    assert (config.admin.host, config.admin.port) == ("0.0.0.0", 9000)
    protocols = otlp_receiver(config).protocols
    assert protocols.grpc is not None and protocols.grpc.port == 5317
    assert protocols.http is not None and protocols.http.port == 5318
    assert config.logging.level == "debug"


def test_overrides_apply_to_loaded_files_and_can_enable_a_protocol() -> None:
    environ = {"OTELGATE_HTTP_ENDPOINT": "127.0.0.1:9318", "OTELGATE_LOG_LEVEL": ""}
    config = parse_config(patched(("logging", {"level": "error"})), environ=environ)
    protocols = otlp_receiver(config).protocols
    assert protocols.grpc == GrpcProtocolConfig(endpoint="0.0.0.0:4317")
    assert protocols.http == HttpProtocolConfig(endpoint="127.0.0.1:9318")
    assert config.logging.level == "error"  # an empty variable counts as unset


def test_apply_env_overrides_returns_a_copy() -> None:
    config = parse_config(patched(), environ={})
    changed = apply_env_overrides(config, {"OTELGATE_GRPC_ENDPOINT": "127.0.0.1:1"})
    grpc = otlp_receiver(changed).protocols.grpc
    assert grpc is not None and grpc.endpoint == "127.0.0.1:1"
    original = otlp_receiver(config).protocols.grpc
    assert original is not None and original.endpoint == "0.0.0.0:4317"
    assert apply_env_overrides(config, {}) == config


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"OTELGATE_ADMIN_ENDPOINT": "admin"},
            [("env:OTELGATE_ADMIN_ENDPOINT", "'admin' must be host:port, e.g. 0.0.0.0:4317")],
        ),
        (
            {"OTELGATE_GRPC_ENDPOINT": "0.0.0.0:65536"},
            [
                (
                    "env:OTELGATE_GRPC_ENDPOINT",
                    "port '65536' in '0.0.0.0:65536' must be a number in 0..65535",
                )
            ],
        ),
        (
            {"OTELGATE_LOG_LEVEL": "chatty", "OTELGATE_HTTP_ENDPOINT": "x"},
            [
                (
                    "env:OTELGATE_LOG_LEVEL",
                    "must be 'debug', 'info', 'warning' or 'error' (got 'chatty')",
                ),
                ("env:OTELGATE_HTTP_ENDPOINT", "'x' must be host:port, e.g. 0.0.0.0:4317"),
            ],
        ),
    ],
)
def test_env_override_errors(environ: dict[str, str], expected: list[tuple[str, str]]) -> None:
    assert issues_of(patched(), environ) == expected


def test_endpoint_override_needs_exactly_one_otlp_receiver() -> None:
    text = patched(("receivers.otlp/second", {"protocols": {"http": None}}))
    environ = {"OTELGATE_GRPC_ENDPOINT": "0.0.0.0:1", "OTELGATE_HTTP_ENDPOINT": "0.0.0.0:2"}
    message = "needs exactly one otlp receiver to apply to (found 2: otlp, otlp/second)"
    assert issues_of(text, environ) == [
        ("env:OTELGATE_GRPC_ENDPOINT", message),
        ("env:OTELGATE_HTTP_ENDPOINT", message),
    ]
    # Without the variables the same file is fine.
    assert len(parse_config(text, environ={}).receivers) == 2

    bare = Config(service=ServiceConfig.model_construct(pipelines={}))
    with pytest.raises(ConfigError) as info:
        apply_env_overrides(bare, {"OTELGATE_GRPC_ENDPOINT": "0.0.0.0:1"})
    assert [(i.path, i.message) for i in info.value.errors] == [
        ("env:OTELGATE_GRPC_ENDPOINT", "needs exactly one otlp receiver to apply to (found none)")
    ]


def test_models_can_be_built_directly() -> None:
    action = ResourceAction(key="k", value="v", action="insert")
    assert action.value == "v"
    assert ResourceProcessorConfig(attributes=[action]).attributes == [action]
    assert OtlpExporterConfig(endpoint="c:4317").port == 4317
    assert FileExporterConfig(path="x").rotation == FileRotationSettings()
