"""gateway.config.env: ${env:VAR} expansion, defaults, escapes, and its errors with the path
of the value."""

from __future__ import annotations

import pytest

from exporters.file import FileExporterConfig
from exporters.otlp.config import OtlpExporterConfig
from gateway.config.loading import parse_config
from tests.gateway.config.helpers import issues_of, otlp_receiver, patched

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
