"""gateway.config.overrides: the OTELGATE_* environment overrides, on the default
configuration and on loaded files, and their errors."""

from __future__ import annotations

import pytest

from gateway.config.issues import ConfigError
from gateway.config.loading import default_config, parse_config
from gateway.config.model import Config, ServiceConfig
from gateway.config.overrides import apply_env_overrides
from gateway.receivers.otlp import GrpcProtocolConfig, HttpProtocolConfig
from tests.gateway.config.helpers import issues_of, otlp_receiver, patched


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
