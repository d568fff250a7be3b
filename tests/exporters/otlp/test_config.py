"""The otlp exporter's configuration: endpoint forms per protocol, and the errors of bad
endpoints, protocol, timeout and TLS settings."""

from __future__ import annotations

from typing import Any

import pytest

from exporters.otlp.config import OtlpExporterConfig
from gateway.config.loading import parse_config
from tests.gateway.config.helpers import issues_of, patched


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


BAD_CASES: list[tuple[str, str, list[tuple[str, str]]]] = [
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
        "zero timeout",
        patched(("exporters.otlp/down.timeout", 0)),
        [("exporters.otlp/down.timeout", "must be greater than 0 (got 0.0)")],
    ),
    (
        "tls cert without key",
        patched(("exporters.otlp/down.tls", {"cert_file": "/c.pem"})),
        [("exporters.otlp/down.tls", "cert_file and key_file must be given together")],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [case[1:] for case in BAD_CASES], ids=[case[0] for case in BAD_CASES]
)
def test_bad_config_reports_exact_paths(text: str, expected: list[tuple[str, str]]) -> None:
    assert sorted(issues_of(text)) == sorted(expected)
