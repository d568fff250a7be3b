"""The resource processor's configuration: attribute actions and their errors."""

from __future__ import annotations

import pytest

from tests.gateway.config.helpers import issues_of, patched

BAD_CASES: list[tuple[str, str, list[tuple[str, str]]]] = [
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
]


@pytest.mark.parametrize(
    ("text", "expected"), [case[1:] for case in BAD_CASES], ids=[case[0] for case in BAD_CASES]
)
def test_bad_config_reports_exact_paths(text: str, expected: list[tuple[str, str]]) -> None:
    assert sorted(issues_of(text)) == sorted(expected)
