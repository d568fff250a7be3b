"""gateway.config.issues: every problem reported with the dotted path of its key (unknown
keys and wrong types at any depth), all of them at once, one per line."""

from __future__ import annotations

import pytest

from gateway.config.issues import ConfigError, ConfigIssue
from tests.gateway.config.helpers import issues_of, patched

BAD_CASES: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "unknown key in a protocol",
        patched(("receivers.otlp.protocols.grpc.max_msg", 4)),
        [("receivers.otlp.protocols.grpc.max_msg", "unknown key")],
    ),
    (
        "unknown key three levels into an exporter",
        patched(("exporters.file.rotation", {"max_filez": 3})),
        [("exporters.file.rotation.max_filez", "unknown key")],
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
        "logging",
        patched(("logging", {"level": "loud", "format": "xml"})),
        [
            ("logging.level", "must be 'debug', 'info', 'warning' or 'error' (got 'loud')"),
            ("logging.format", "must be 'text' or 'json' (got 'xml')"),
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


def test_config_error_str_lists_every_issue_on_its_own_line() -> None:
    error = ConfigError([ConfigIssue("a.b", "is required"), ConfigIssue("c[0]", "unknown key")])
    assert str(error) == "a.b: is required\nc[0]: unknown key"
    assert error.errors == [ConfigIssue("a.b", "is required"), ConfigIssue("c[0]", "unknown key")]
