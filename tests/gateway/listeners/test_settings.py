"""Listener limits in the configuration: defaults, parsing, errors with their paths, the grpc
channel arguments they become; and credentials kept out of configuration errors."""

from __future__ import annotations

import pytest

from gateway.config.loading import parse_config
from gateway.listeners.grpc_limits import server_options
from tests.gateway.config.helpers import issues_of, otlp_receiver, patched

HTTP = "receivers.otlp.protocols.http"
GRPC = "receivers.otlp.protocols.grpc"


def test_defaults() -> None:
    config = parse_config(patched((HTTP, {})), environ={})
    receiver = otlp_receiver(config)
    http, grpc_ = receiver.protocols.http, receiver.protocols.grpc
    assert http is not None and grpc_ is not None
    assert (http.max_connections, http.read_header_timeout, http.read_body_timeout) == (
        4096,
        10.0,
        30.0,
    )
    assert (http.idle_timeout, http.max_request_header_size) == (60.0, 65536)
    assert (grpc_.max_connections, grpc_.max_concurrent_streams, grpc_.handshake_timeout) == (
        4096,
        100,
        10.0,
    )
    server = grpc_.keepalive.server_parameters
    assert (server.max_connection_idle, server.max_connection_age, server.time) == (
        300.0,
        None,
        7200.0,
    )
    assert grpc_.keepalive.enforcement_policy.min_time == 10.0
    assert (config.admin.max_connections, config.admin.read_header_timeout) == (128, 10.0)


def test_every_key_parses() -> None:
    config = parse_config(
        patched(
            (HTTP, {"max_connections": 10, "read_header_timeout": "1.5s", "idle_timeout": "2m"}),
            (
                GRPC,
                {
                    "endpoint": "0.0.0.0:4317",
                    "max_connections": 20,
                    "max_concurrent_streams": 8,
                    "handshake_timeout": "500ms",
                    "keepalive": {
                        "server_parameters": {
                            "max_connection_idle": "30s",
                            "max_connection_age": "1h",
                            "max_connection_age_grace": "10s",
                            "time": "1m",
                            "timeout": "5s",
                        },
                        "enforcement_policy": {"min_time": "20s", "permit_without_stream": False},
                    },
                },
            ),
            ("admin", {"endpoint": "127.0.0.1:8888", "max_connections": 5}),
        ),
        environ={},
    )
    receiver = otlp_receiver(config)
    assert receiver.protocols.http is not None and receiver.protocols.grpc is not None
    assert receiver.protocols.http.read_header_timeout == 1.5
    assert receiver.protocols.http.idle_timeout == 120.0
    assert dict(server_options(receiver.protocols.grpc)) == {
        "grpc.enable_channelz": 1,
        "grpc.max_allowed_incoming_connections": 20,
        "grpc.server_handshake_timeout_ms": 500,
        "grpc.max_concurrent_streams": 8,
        "grpc.max_connection_idle_ms": 30_000,
        "grpc.max_connection_age_ms": 3_600_000,
        "grpc.max_connection_age_grace_ms": 10_000,
        "grpc.keepalive_time_ms": 60_000,
        "grpc.keepalive_timeout_ms": 5_000,
        "grpc.http2.min_ping_interval_without_data_ms": 20_000,
        "grpc.keepalive_permit_without_calls": 0,
    }
    assert config.admin.max_connections == 5


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (f"{HTTP}.max_connections", 0, "must be greater than 0 (got 0)"),
        (f"{HTTP}.read_header_timeout", 0, "must be greater than 0 (got 0.0)"),
        (f"{HTTP}.max_request_header_size", 100, "must be at least 1024 (got 100)"),
        (
            f"{HTTP}.read_body_timeout",
            "slowly",
            "invalid duration 'slowly' (use seconds, e.g. 5 or 0.5, or 500ms, 5s, 2m, 1h)",
        ),
        (f"{GRPC}.max_concurrent_streams", -1, "must be greater than 0 (got -1)"),
        (
            f"{GRPC}.keepalive.server_parameters.max_connection_idle",
            0,
            "must be greater than 0 (got 0.0)",
        ),
        (f"{GRPC}.keepalive.enforcement_policy.min_tme", "1s", "unknown key"),
        ("admin.idle_timeout", -1, "duration must be zero or positive (got -1)"),
    ],
)
def test_bad_limits_are_reported_with_their_path(path: str, value: object, message: str) -> None:
    assert issues_of(patched((HTTP, {}), (path, value))) == [(path, message)]


def test_configuration_errors_never_show_credentials() -> None:
    text = patched(
        ("exporters.otlp/down.endpoint", "alice:S3cretPass@collector:notaport"),
        (
            "exporters.otlp/up",
            {"protocol": "http/protobuf", "endpoint": "ftp://bob:Hunter2@h/"},
        ),
        ("exporters.otlp/up.headers", {"Authorization": 12345678, "x-tenant": 7}),
    )
    issues = issues_of(text)
    shown = "\n".join(f"{path}: {message}" for path, message in issues)
    assert "S3cretPass" not in shown and "Hunter2" not in shown and "12345678" not in shown
    assert ("exporters.otlp/up.headers.x-tenant", "must be a string (got 7)") in issues
    assert (
        "exporters.otlp/up.headers.Authorization",
        "must be a string (got a hidden value)",
    ) in issues
    assert "'ftp://bob:***@h/'" in shown and "alice:***@collector" in shown
