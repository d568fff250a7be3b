"""SLO maths against hand-computed values (gateway.slo.burn_rate)."""

from __future__ import annotations

import pytest

from gateway.slo.burn_rate import (
    BurnRateRule,
    Counts,
    alert_severities,
    budget_ratio,
    burn_rate,
    error_budget,
    error_rate,
    evaluate,
    evaluate_alerts,
    format_window,
    sli,
    window_counts,
    workbook_rules,
)

NOW = 100_000  # a minute number


@pytest.mark.parametrize(
    ("buckets", "expected"),
    [
        # The current minute counts, even partially elapsed.
        ([(NOW, 1, 1)], {5: (1, 1), 30: (1, 1), 60: (1, 1)}),
        # Age 4 is the oldest minute of a 5-minute window; age 5 is outside it.
        ([(NOW - 4, 2, 4), (NOW - 5, 10, 10)], {5: (2, 4), 30: (12, 14), 60: (12, 14)}),
        # Age 29 is inside 30m, age 30 only inside 1h; age 60 is outside every window.
        (
            [(NOW - 29, 5, 5), (NOW - 30, 7, 8), (NOW - 60, 50, 50)],
            {5: (0, 0), 30: (5, 5), 60: (12, 13)},
        ),
        # Buckets from the future (clock skew after a restart) are ignored.
        ([(NOW + 1, 100, 100), (NOW, 3, 5)], {5: (3, 5), 30: (3, 5), 60: (3, 5)}),
        ([], {5: (0, 0), 30: (0, 0), 60: (0, 0)}),
    ],
)
def test_window_counts_and_edges(buckets, expected):
    got = window_counts(buckets, NOW, [5, 30, 60])
    assert {size: (c.good, c.total) for size, c in got.items()} == expected


@pytest.mark.parametrize(
    ("counts", "objective", "want_sli", "want_error", "want_burn"),
    [
        (Counts(990, 1000), 0.99, 0.99, 0.01, 1.0),  # spends the budget exactly
        (Counts(900, 1000), 0.999, 0.9, 0.1, 100.0),
        (Counts(9856, 10000), 0.999, 0.9856, 0.0144, 14.4),  # the workbook's page threshold
        (Counts(1000, 1000), 0.999, 1.0, 0.0, 0.0),
        (Counts(0, 50), 0.95, 0.0, 1.0, 20.0),  # everything failed: 1 / 0.05
        (Counts(12, 10), 0.9, 1.0, 0.0, 0.0),  # good counted before total: clamped
        (Counts(0, 0), 0.999, None, None, None),  # no events: undefined, not 100%
    ],
)
def test_sli_error_rate_burn_rate(counts, objective, want_sli, want_error, want_burn):
    assert sli(counts) == (None if want_sli is None else pytest.approx(want_sli))
    assert error_rate(counts) == (None if want_error is None else pytest.approx(want_error))
    assert burn_rate(counts, objective) == (None if want_burn is None else pytest.approx(want_burn))


@pytest.mark.parametrize(
    ("counts", "objective", "allowed", "consumed", "remaining", "consumed_ratio", "left_ratio"),
    [
        (Counts(9990, 10000), 0.999, 10, 10, 0, 1.0, 0.0),  # exactly spent
        (Counts(9995, 10000), 0.999, 10, 5, 5, 0.5, 0.5),
        (Counts(9970, 10000), 0.999, 10, 30, -20, 3.0, -2.0),  # overspent three times
        (Counts(188, 200), 0.9, 20, 12, 8, 0.6, 0.4),
        (Counts(500, 500), 0.99, 5, 0, 5, 0.0, 1.0),
        (Counts(0, 0), 0.99, 0, 0, 0, None, None),
    ],
)
def test_error_budget(counts, objective, allowed, consumed, remaining, consumed_ratio, left_ratio):
    budget = error_budget(counts, objective)
    assert budget.allowed == pytest.approx(allowed)
    assert budget.consumed == pytest.approx(consumed)
    assert budget.remaining == pytest.approx(remaining)
    if consumed_ratio is None:
        assert budget.consumed_ratio is None and budget.remaining_ratio is None
    else:
        assert budget.consumed_ratio == pytest.approx(consumed_ratio)
        assert budget.remaining_ratio == pytest.approx(left_ratio)


def test_budget_ratio_has_no_float_noise():
    assert [budget_ratio(o) for o in (0.9, 0.99, 0.999, 0.9995)] == [0.1, 0.01, 0.001, 0.0005]
    assert 1 - 0.9 != 0.1  # why it is rounded


def test_workbook_rules_are_the_sre_workbook_table():
    got = [(r.severity, r.factor, r.long_window, r.short_window) for r in workbook_rules()]
    assert got == [
        ("page", 14.4, 60, 5),
        ("page", 6.0, 360, 30),
        ("ticket", 3.0, 1440, 120),
        ("ticket", 1.0, 4320, 360),
    ]


def _rates(**by_window: float | None) -> dict[int, float | None]:
    minutes = {"m5": 5, "m30": 30, "h1": 60, "h2": 120, "h6": 360, "d1": 1440, "d3": 4320}
    rates: dict[int, float | None] = dict.fromkeys(minutes.values(), 0.0)
    rates.update({minutes[k]: v for k, v in by_window.items()})
    return rates


@pytest.mark.parametrize(
    ("rates", "firing", "page", "ticket"),
    [
        (_rates(), [], False, False),
        # page, 14.4x over 1h and 5m: both must reach the factor (>=).
        (_rates(h1=14.4, m5=14.4), [0], True, False),
        (_rates(h1=14.4, m5=14.3), [], False, False),
        (_rates(h1=14.3, m5=100), [], False, False),
        # page, 6x over 6h and 30m.
        (_rates(h6=6, m30=6), [1], True, False),
        (_rates(h6=5.99, m30=50), [], False, False),
        # ticket, 3x over 1d and 2h.
        (_rates(d1=3, h2=3), [2], False, True),
        (_rates(d1=3, h2=2.9), [], False, False),
        # ticket, 1x over 3d and 6h.
        (_rates(d3=1, h6=1), [3], False, True),
        (_rates(d3=0.99, h6=5), [], False, False),
        # A sustained 20x burn: every condition fires.
        (_rates(m5=20, m30=20, h1=20, h2=20, h6=20, d1=20, d3=20), [0, 1, 2, 3], True, True),
        # A window without events never fires, however high the other one burns.
        (_rates(h1=100, m5=None), [], False, False),
        (_rates(d3=None, h6=2), [], False, False),
    ],
)
def test_multiwindow_alerts(rates, firing, page, ticket):
    conditions = evaluate_alerts(rates, workbook_rules())
    assert [i for i, c in enumerate(conditions) if c.firing] == firing
    assert alert_severities(conditions) == {"page": page, "ticket": ticket}


def test_alert_factors_are_configurable():
    rules = workbook_rules(page_quick=10.0, ticket_slow=2.0)
    assert alert_severities(evaluate_alerts(_rates(h1=10, m5=10), rules))["page"] is True
    assert alert_severities(evaluate_alerts(_rates(d3=1.5, h6=1.5), rules))["ticket"] is False
    custom = [BurnRateRule("page", 2.0, 30, 5)]
    assert evaluate_alerts({30: 2.0, 5: 2.0}, custom)[0].firing


@pytest.mark.parametrize(
    ("minutes", "label"),
    [
        (5, "5m"),
        (30, "30m"),
        (60, "1h"),
        (90, "90m"),
        (360, "6h"),
        (1440, "1d"),
        (4320, "3d"),
        (43200, "30d"),
        (40320, "28d"),
    ],
)
def test_format_window(minutes, label):
    assert format_window(minutes) == label


def test_evaluate_a_30_day_slo_by_hand():
    buckets = [
        (NOW, 90, 100),  # 10% errors this minute: every window
        (NOW - 100, 900, 1000),  # 100 minutes ago: 2h and longer
        (NOW - 43199, 500, 500),  # the oldest minute of the 30-day window
        (NOW - 43200, 7, 77),  # just outside it
    ]
    result = evaluate(buckets, NOW, 0.99, 43200, workbook_rules())
    assert list(result.windows) == ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"]
    counts = {label: (w.counts.good, w.counts.total) for label, w in result.windows.items()}
    assert counts == {
        "5m": (90, 100),
        "30m": (90, 100),
        "1h": (90, 100),
        "2h": (990, 1100),
        "6h": (990, 1100),
        "1d": (990, 1100),
        "3d": (990, 1100),
        "30d": (1490, 1600),
    }
    # Error rates 0.1 (10/100), 0.1 (110/1100), 0.06875 (110/1600); budget 1% -> burn x100.
    burn = {label: w.burn_rate for label, w in result.windows.items()}
    assert burn == pytest.approx(
        {"5m": 10, "30m": 10, "1h": 10, "2h": 10, "6h": 10, "1d": 10, "3d": 10, "30d": 6.875}
    )
    assert result.window.label == "30d"
    assert result.window.sli == pytest.approx(1490 / 1600)
    # Budget: 1% of 1600 = 16 bad events allowed, 110 happened.
    assert result.budget.allowed == pytest.approx(16)
    assert result.budget.consumed == pytest.approx(110)
    assert result.budget.remaining == pytest.approx(-94)
    assert result.budget.consumed_ratio == pytest.approx(6.875)
    assert result.budget.remaining_ratio == pytest.approx(-5.875)
    # 10x: below the 14.4x page (1h/5m), above 6x page (6h/30m), 3x and 1x tickets.
    assert [c.firing for c in result.alerts] == [False, True, True, True]
    assert result.severities == {"page": True, "ticket": True}


def test_evaluate_without_events_reports_nothing_and_never_alerts():
    result = evaluate([], NOW, 0.999, 7 * 1440, workbook_rules())
    assert result.window.label == "7d"
    assert all(w.sli is None and w.burn_rate is None for w in result.windows.values())
    assert result.budget.remaining_ratio is None
    assert result.severities == {"page": False, "ticket": False}


def test_evaluate_a_window_shorter_than_the_alert_windows():
    # A 1-day SLO still reports the 3d window (alerts need it); its own window is "1d".
    result = evaluate([(NOW - 2000, 0, 10), (NOW, 10, 10)], NOW, 0.9, 1440, workbook_rules())
    assert result.window.label == "1d" and result.window.counts == Counts(10, 10)
    assert result.windows["3d"].counts == Counts(10, 20)
