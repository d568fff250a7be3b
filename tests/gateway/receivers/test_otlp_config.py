"""The otlp receiver's configuration: its protocols, defaults and errors."""

from __future__ import annotations

import pytest

from gateway.config.loading import parse_config
from gateway.receivers.otlp import GrpcProtocolConfig
from tests.gateway.config.helpers import issues_of, otlp_receiver, patched


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


BAD_CASES: list[tuple[str, str, list[tuple[str, str]]]] = [
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
]


@pytest.mark.parametrize(
    ("text", "expected"), [case[1:] for case in BAD_CASES], ids=[case[0] for case in BAD_CASES]
)
def test_bad_config_reports_exact_paths(text: str, expected: list[tuple[str, str]]) -> None:
    assert sorted(issues_of(text)) == sorted(expected)
