"""SLO views on the admin listener: ``GET /slo``, ``GET /slo/{name}`` and the SLO gauges.

Both read the tracker's current state; nothing is computed on the ingest path. Ratios are
``null`` (and gauges absent) for windows without events.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, HTTPException
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, Field

from gateway.slo.burn_rate import Evaluation, format_window
from gateway.slo.tracker import SloTracker


class WindowStatus(BaseModel):
    """One window: events, SLI, error rate and burn rate (ratios null without events)."""

    good: float
    total: float
    sli: float | None
    error_rate: float | None
    burn_rate: float | None


class BudgetStatus(BaseModel):
    """The error budget over the SLO window, as bad-event counts and as ratios."""

    total: float = Field(description="Bad events the objective allows in the window")
    consumed: float = Field(description="Bad events in the window")
    remaining: float = Field(description="total - consumed (negative when overspent)")
    consumed_ratio: float | None
    remaining_ratio: float | None


class AlertStatus(BaseModel):
    """One multi-window burn-rate condition."""

    severity: str
    burn_rate_threshold: float
    long_window: str
    short_window: str
    long_burn_rate: float | None
    short_burn_rate: float | None
    firing: bool


class SloStatus(BaseModel):
    """An SLO and its current state."""

    name: str
    service: str
    description: str
    sli_kind: str
    objective: float
    window: str
    sli: float | None = Field(description="SLI over the SLO window")
    windows: dict[str, WindowStatus]
    error_budget: BudgetStatus
    burn_rates: dict[str, float | None]
    alerts: list[AlertStatus]
    alert_state: dict[str, bool] = Field(description="Per severity: whether it fires")
    status: str = Field(description="page, ticket, ok, or no_data without events")


class SloOverview(BaseModel):
    """Every configured SLO."""

    slos: list[SloStatus]


def slo_status(tracker: SloTracker, name: str) -> SloStatus:
    """The status of SLO ``name`` now (``KeyError`` if unknown)."""
    slo, result = tracker.slos[name], tracker.evaluate(name)
    budget = result.budget
    severities = result.severities
    if result.window.counts.total <= 0:
        status = "no_data"
    else:
        status = next((s for s in ("page", "ticket") if severities.get(s)), "ok")
    return SloStatus(
        name=slo.name,
        service=slo.service,
        description=slo.description,
        sli_kind=slo.sli.kind,
        objective=slo.objective,
        window=result.window.label,
        sli=result.window.sli,
        windows={
            label: WindowStatus(
                good=w.counts.good,
                total=w.counts.total,
                sli=w.sli,
                error_rate=w.error_rate,
                burn_rate=w.burn_rate,
            )
            for label, w in result.windows.items()
        },
        error_budget=BudgetStatus(
            total=budget.allowed,
            consumed=budget.consumed,
            remaining=budget.remaining,
            consumed_ratio=budget.consumed_ratio,
            remaining_ratio=budget.remaining_ratio,
        ),
        burn_rates={label: w.burn_rate for label, w in result.windows.items()},
        alerts=[
            AlertStatus(
                severity=c.rule.severity,
                burn_rate_threshold=c.rule.factor,
                long_window=format_window(c.rule.long_window),
                short_window=format_window(c.rule.short_window),
                long_burn_rate=c.long_burn_rate,
                short_burn_rate=c.short_burn_rate,
                firing=c.firing,
            )
            for c in result.alerts
        ],
        alert_state=severities,
        status=status,
    )


def create_slo_router(tracker: SloTracker) -> APIRouter:
    """``GET /slo`` and ``GET /slo/{name}``."""
    router = APIRouter(tags=["slo"])

    @router.get("/slo", summary="Every SLO: SLIs, error budget, burn rates, alerts")
    def all_slos() -> SloOverview:
        return SloOverview(slos=[slo_status(tracker, name) for name in tracker.slos])

    @router.get("/slo/{name}", summary="One SLO", responses={404: {"description": "Unknown"}})
    def one_slo(name: str) -> SloStatus:
        if name not in tracker.slos:
            raise HTTPException(404, f"no SLO named {name!r}")
        return slo_status(tracker, name)

    return router


class SloCollector(Collector):
    """The SLO gauges, read from the tracker at scrape time."""

    def __init__(self, tracker: SloTracker) -> None:
        self.tracker = tracker

    def describe(self) -> Iterator[Metric]:
        """The families (so the registry can detect name clashes)."""
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        """The current values."""
        sli, budget, burn, objective, alert = self._families()
        for name, slo in self.tracker.slos.items():
            result: Evaluation = self.tracker.evaluate(name)
            objective.add_metric([name], slo.objective)
            if result.budget.remaining_ratio is not None:
                budget.add_metric([name], result.budget.remaining_ratio)
            for label, window in result.windows.items():
                if window.sli is not None and window.burn_rate is not None:
                    sli.add_metric([name, label], window.sli)
                    burn.add_metric([name, label], window.burn_rate)
            for severity, firing in result.severities.items():
                alert.add_metric([name, severity], 1.0 if firing else 0.0)
        yield from (sli, budget, burn, objective, alert)

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily("otelgate_slo_sli", "SLI (good/total events) over a window.",
                              labels=["slo", "window"]),
            GaugeMetricFamily("otelgate_slo_error_budget_remaining_ratio",
                              "Error budget left over the SLO window (1 = untouched, < 0 = "
                              "overspent).", labels=["slo"]),
            GaugeMetricFamily("otelgate_slo_burn_rate", "Error rate / (1 - objective) over a "
                              "window.", labels=["slo", "window"]),
            GaugeMetricFamily("otelgate_slo_objective_ratio", "The SLO's objective.",
                              labels=["slo"]),
            GaugeMetricFamily("otelgate_slo_alert", "1 when a multi-window burn-rate alert of "
                              "this severity fires.", labels=["slo", "severity"]),
        )  # fmt: skip
