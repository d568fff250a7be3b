"""The Service page (``/ui/services/{name}``): RED charts over the last hour from the
per-service minute history, its SLOs, its error groups, its recent slow and failed traces and
its recent error logs."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from gateway.api.errors_models import GroupView, group_view
from gateway.api.health_models import ServiceHealth, service_health
from gateway.dashboard.charts import Series, line_chart
from gateway.dashboard.overview import slo_statuses
from gateway.dashboard.render import page
from gateway.dashboard.sources import DashboardSources
from gateway.dashboard.telemetry_views import STORE_ERRORS, store_failed
from gateway.health.history import MinutePoint
from gateway.store.telemetry_records import LogQuery, StoredLog, TraceQuery, TraceSummary

RECENT = 10  # rows in each "recent" table
SLOW_TRACE = 1.0  # seconds: a trace at least this long is listed as slow
SIZE = {"width": 560, "height": 220}  # a chart's drawing size (scaled to its card)


@dataclass(slots=True)
class RecentTelemetry:
    """What the store holds about a service: slow and failed traces, error logs."""

    available: bool
    failed: list[TraceSummary]
    slow: list[TraceSummary]
    error_logs: list[StoredLog]
    error: str | None = None  # the store could not be read


def red_charts(name: str, points: list[MinutePoint], now: float) -> dict[str, Any]:
    """The rate, error-rate and latency charts of one service's minute history (the current
    minute's rate is over the part of it that has passed)."""
    rate = [(p.start, p.requests / max(1.0, min(60.0, now - p.start))) for p in points]
    errors = [(p.start, p.errors / p.requests if p.requests else None) for p in points]
    latency = [
        Series(label, [(p.start, getattr(p, label)) for p in points], f"s-{label}")
        for label in ("p50", "p95", "p99")
    ]
    return {
        "rate": line_chart(
            [Series("requests/s", rate, "s-rate")],
            unit="req/s",
            title=f"{name}: requests per second",
            **SIZE,
        ),
        "errors": line_chart(
            [Series("error rate", errors, "s-errors")],
            unit="%",
            title=f"{name}: error rate",
            **SIZE,
        ),
        "latency": line_chart(latency, unit="s", title=f"{name}: latency percentiles", **SIZE),
    }


def error_groups(sources: DashboardSources, name: str) -> list[GroupView] | None:
    """The service's error groups, most recent first (None without error tracking)."""
    if sources.errors is None:
        return None
    groups = [g for g in list(sources.errors.tracker.groups.values()) if name in g.services]
    groups.sort(key=lambda g: (-g.last_seen, g.id))
    return [group_view(g) for g in groups[:RECENT]]


def recent_telemetry(sources: DashboardSources, name: str) -> RecentTelemetry:
    """The store's recent failed and slow traces and error logs of a service (blocking)."""
    reader = sources.telemetry()
    if reader is None:
        return RecentTelemetry(False, [], [], [])
    try:
        failed = reader.traces(TraceQuery(service=name, status="error", limit=RECENT))
        slow = reader.traces(TraceQuery(service=name, min_duration=SLOW_TRACE, limit=RECENT))
        logs = reader.search_logs(LogQuery(service=name, severity="error", limit=RECENT))
    except STORE_ERRORS as exc:
        return RecentTelemetry(True, [], [], [], store_failed(exc))
    return RecentTelemetry(True, failed, slow, logs.records)


def add_routes(router: APIRouter, sources: DashboardSources) -> None:
    """``GET /ui/services/{name}``."""

    @router.get("/ui/services/{name:path}")
    async def service(request: Request, name: str) -> HTMLResponse:
        tracker = sources.health.tracker
        report = tracker.report(name)
        history = tracker.history(name)
        if report is None or history is None:
            return page(
                request, "service.html", title=name, section="overview",
                refresh=sources.refresh, status_code=404, name=name, health=None,
            )  # fmt: skip
        health: ServiceHealth = service_health(report)
        recent = await asyncio.to_thread(recent_telemetry, sources, name)
        return page(
            request,
            "service.html",
            title=name,
            section="overview",
            refresh=sources.refresh,
            name=name,
            health=health,
            charts=red_charts(name, history, time.time()),
            slos=slo_statuses(sources, name),
            groups=error_groups(sources, name),
            recent=recent,
            slow_after=SLOW_TRACE,
        )
