"""The service section: pipeline ids and the components they reference, checked against
what is defined."""

from __future__ import annotations

import pytest

from tests.gateway.config.helpers import DELETE, issues_of, patched

BAD_CASES: list[tuple[str, str, list[tuple[str, str]]]] = [
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
]


@pytest.mark.parametrize(
    ("text", "expected"), [case[1:] for case in BAD_CASES], ids=[case[0] for case in BAD_CASES]
)
def test_bad_config_reports_exact_paths(text: str, expected: list[tuple[str, str]]) -> None:
    assert sorted(issues_of(text)) == sorted(expected)


def test_a_failing_component_still_counts_as_defined() -> None:
    # The exporter is invalid, but the pipeline reference to it is not a second error.
    text = patched(("exporters.file.format", "csv"))
    assert [path for path, _ in issues_of(text)] == ["exporters.file.format"]
