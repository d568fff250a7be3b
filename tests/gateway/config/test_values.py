"""gateway.config.values: durations and listen endpoints, as values and as the errors a file
with a bad one reports."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config.loading import parse_config
from gateway.config.values import parse_duration
from tests.gateway.config.helpers import issues_of, patched


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


BAD_CASES: list[tuple[str, str, list[tuple[str, str]]]] = [
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
