"""Settings every exporter has (exporters.settings): sending queue and retry bounds."""

from __future__ import annotations

import pytest

from tests.gateway.config.helpers import issues_of, patched

BAD_CASES: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "queue and retry bounds",
        patched(
            (
                "exporters.file.sending_queue",
                {"queue_size": 0, "num_consumers": 0, "on_full": "block"},
            ),
            (
                "exporters.file.retry_on_failure",
                {
                    "multiplier": 0.5,
                    "randomization_factor": 1.5,
                    "initial_interval": "10s",
                    "max_interval": "5s",
                    "max_elapsed_time": "-1s",
                },
            ),
        ),
        [
            ("exporters.file.sending_queue.queue_size", "must be greater than 0 (got 0)"),
            ("exporters.file.sending_queue.num_consumers", "must be at least 1 (got 0)"),
            ("exporters.file.sending_queue.on_full", "must be 'refuse' or 'drop' (got 'block')"),
            (
                "exporters.file.retry_on_failure.max_interval",
                "must be at least initial_interval (10.0)",
            ),
            ("exporters.file.retry_on_failure.multiplier", "must be at least 1 (got 0.5)"),
            ("exporters.file.retry_on_failure.randomization_factor", "must be at most 1 (got 1.5)"),
            (
                "exporters.file.retry_on_failure.max_elapsed_time",
                "invalid duration '-1s' (use seconds, e.g. 5 or 0.5, or 500ms, 5s, 2m, 1h)",
            ),
        ],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [case[1:] for case in BAD_CASES], ids=[case[0] for case in BAD_CASES]
)
def test_bad_config_reports_exact_paths(text: str, expected: list[tuple[str, str]]) -> None:
    assert sorted(issues_of(text)) == sorted(expected)
