"""The file exporter's configuration: path, rotation and format errors."""

from __future__ import annotations

import pytest

from tests.gateway.config.helpers import issues_of, patched

BAD_CASES: list[tuple[str, str, list[tuple[str, str]]]] = [
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
]


@pytest.mark.parametrize(
    ("text", "expected"), [case[1:] for case in BAD_CASES], ids=[case[0] for case in BAD_CASES]
)
def test_bad_config_reports_exact_paths(text: str, expected: list[tuple[str, str]]) -> None:
    assert sorted(issues_of(text)) == sorted(expected)
