"""How annotations show values."""

from __future__ import annotations

import pytest

from gateway.alerting.evaluation import Unit, format_value

# -- format_value ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (0.073, "ratio", "7.3%"),
        (0.05, "ratio", "5.0%"),
        (1.0, "ratio", "100.0%"),
        (1.25, "seconds", "1.25s"),
        (0.25, "seconds", "0.25s"),
        (0.0123456, "seconds", "0.0123s"),
        (90.0, "seconds", "90s"),
        (99.94, "seconds", "99.9s"),
        (100.0, "seconds", "100s"),
        (3600.4, "seconds", "3600s"),
        (12.0, "count", "12"),
        (0.5, "count", "0.5"),
        (0.5, "rate", "0.5/s"),
        (123.456, "rate", "123/s"),
    ],
)
def test_format_value(value: float, unit: Unit, text: str) -> None:
    assert format_value(value, unit) == text
