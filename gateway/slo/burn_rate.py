"""SLO maths: SLIs over windows, error budget, burn rates and multi-window multi-burn-rate
alerts (Google SRE workbook, "Alerting on SLOs"). Pure functions over minute buckets.

Events are counted into minute buckets (``minute = floor(unix_seconds / 60)``). A window of
``N`` minutes evaluated at minute ``now`` covers the buckets ``now - N + 1 .. now``: the
current (partial) minute and the ``N - 1`` before it. A window without events has no SLI
(``None``) and never alerts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

MINUTE = 60
#: The windows every SLO is reported over (label, minutes), besides its own window.
REPORT_WINDOWS: tuple[tuple[str, int], ...] = (
    ("5m", 5), ("30m", 30), ("1h", 60), ("2h", 120), ("6h", 360), ("1d", 1440), ("3d", 4320),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Counts:
    """Good and total events (floats: ratio SLIs count counter increments)."""

    good: float = 0.0
    total: float = 0.0

    @property
    def bad(self) -> float:
        """Events that were not good (never negative)."""
        return max(self.total - self.good, 0.0)


@dataclass(frozen=True, slots=True)
class BurnRateRule:
    """Alert at ``severity`` when the burn rate is at least ``factor`` over both windows."""

    severity: str
    factor: float
    long_window: int  # minutes
    short_window: int  # minutes


def workbook_rules(
    page_quick: float = 14.4, page_slow: float = 6.0, ticket_quick: float = 3.0,
    ticket_slow: float = 1.0,
) -> tuple[BurnRateRule, ...]:  # fmt: skip
    """The workbook's four conditions: page 1h/5m and 6h/30m, ticket 1d/2h and 3d/6h."""
    return (
        BurnRateRule("page", page_quick, 60, 5),
        BurnRateRule("page", page_slow, 360, 30),
        BurnRateRule("ticket", ticket_quick, 1440, 120),
        BurnRateRule("ticket", ticket_slow, 4320, 360),
    )


def format_window(minutes: int) -> str:
    """A Prometheus-style duration: ``5m``, ``6h``, ``30d``."""
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def window_counts(
    buckets: Iterable[tuple[int, float, float]], now_minute: int, windows: Iterable[int]
) -> dict[int, Counts]:
    """Sum ``(minute, good, total)`` buckets over each window (in minutes) ending at
    ``now_minute``. Buckets after ``now_minute`` (clock skew) are ignored."""
    sizes = sorted(set(windows))
    sums = {size: [0.0, 0.0] for size in sizes}
    for minute, good, total in buckets:
        age = now_minute - minute
        if age < 0:
            continue
        for size in reversed(sizes):  # largest first: stop at the first too-small window
            if age >= size:
                break
            sums[size][0] += good
            sums[size][1] += total
    return {size: Counts(good, total) for size, (good, total) in sums.items()}


def sli(counts: Counts) -> float | None:
    """Good / total, or ``None`` without events."""
    if counts.total <= 0:
        return None
    return min(counts.good, counts.total) / counts.total


def error_rate(counts: Counts) -> float | None:
    """Bad / total, or ``None`` without events."""
    if counts.total <= 0:
        return None
    return min(counts.bad, counts.total) / counts.total


def budget_ratio(objective: float) -> float:
    """The error budget as a ratio, ``1 - objective`` (rounded: 1 - 0.9 is 0.1, not
    0.09999999999999998)."""
    return round(1.0 - objective, 12)


def burn_rate(counts: Counts, objective: float) -> float | None:
    """How fast the budget burns: error rate / (1 - objective); 1.0 spends it exactly."""
    rate = error_rate(counts)
    return None if rate is None else rate / budget_ratio(objective)


@dataclass(frozen=True, slots=True)
class ErrorBudget:
    """The budget of the SLO window, in events and as ratios of the allowed bad events."""

    allowed: float  # bad events the objective allows: (1 - objective) * total
    consumed: float  # bad events so far
    remaining: float  # allowed - consumed (negative when overspent)
    consumed_ratio: float | None  # consumed / allowed; None without events
    remaining_ratio: float | None  # 1 - consumed_ratio


def error_budget(counts: Counts, objective: float) -> ErrorBudget:
    """The error budget over the SLO window's ``counts``."""
    allowed = budget_ratio(objective) * counts.total
    consumed = counts.bad
    spent = burn_rate(counts, objective)  # == consumed / allowed when there are events
    remaining_ratio = None if spent is None else 1.0 - spent
    return ErrorBudget(allowed, consumed, allowed - consumed, spent, remaining_ratio)


@dataclass(frozen=True, slots=True)
class AlertCondition:
    """One rule evaluated: the burn rates over its two windows and whether it fires."""

    rule: BurnRateRule
    long_burn_rate: float | None
    short_burn_rate: float | None

    @property
    def firing(self) -> bool:
        """Both windows have events and burn at least ``factor`` times too fast."""
        long, short = self.long_burn_rate, self.short_burn_rate
        factor = self.rule.factor
        return long is not None and short is not None and long >= factor and short >= factor


def evaluate_alerts(
    burn_rates: Mapping[int, float | None], rules: Sequence[BurnRateRule]
) -> list[AlertCondition]:
    """Every rule against the burn rates by window (minutes); a missing window has none."""
    return [
        AlertCondition(rule, burn_rates.get(rule.long_window), burn_rates.get(rule.short_window))
        for rule in rules
    ]


def alert_severities(conditions: Iterable[AlertCondition]) -> dict[str, bool]:
    """Per severity (``page``, ``ticket``): whether any of its conditions fires."""
    state: dict[str, bool] = {}
    for condition in conditions:
        state[condition.rule.severity] = state.get(condition.rule.severity, False) or (
            condition.firing
        )
    return state


@dataclass(frozen=True, slots=True)
class WindowResult:
    """One window: its events, SLI, error rate and burn rate."""

    label: str
    minutes: int
    counts: Counts
    sli: float | None
    error_rate: float | None
    burn_rate: float | None


@dataclass(frozen=True, slots=True)
class Evaluation:
    """An SLO at one minute: every window, the budget over its own window and the alerts."""

    objective: float
    window: WindowResult  # the SLO's own window
    windows: dict[str, WindowResult] = field(default_factory=dict)  # by label, window included
    budget: ErrorBudget = field(default_factory=lambda: ErrorBudget(0, 0, 0, None, None))
    alerts: list[AlertCondition] = field(default_factory=list)
    severities: dict[str, bool] = field(default_factory=dict)


def evaluate(
    buckets: Iterable[tuple[int, float, float]],
    now_minute: int,
    objective: float,
    window_minutes: int,
    rules: Sequence[BurnRateRule],
) -> Evaluation:
    """Everything about one SLO from its minute buckets."""
    sizes = {label: size for label, size in REPORT_WINDOWS}
    sizes.setdefault(format_window(window_minutes), window_minutes)
    sizes.update({format_window(r.long_window): r.long_window for r in rules})
    sizes.update({format_window(r.short_window): r.short_window for r in rules})
    counts = window_counts(buckets, now_minute, sizes.values())
    results = {
        label: WindowResult(
            label,
            size,
            counts[size],
            sli(counts[size]),
            error_rate(counts[size]),
            burn_rate(counts[size], objective),
        )
        for label, size in sorted(sizes.items(), key=lambda item: item[1])
    }
    own = results[format_window(window_minutes)]
    conditions = evaluate_alerts({r.minutes: r.burn_rate for r in results.values()}, rules)
    return Evaluation(
        objective=objective,
        window=own,
        windows=results,
        budget=error_budget(own.counts, objective),
        alerts=conditions,
        severities=alert_severities(conditions),
    )
