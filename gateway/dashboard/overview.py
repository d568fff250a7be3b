"""The Overview page (``/``): gateway status and components, system resources with
sparklines, every service, the SLOs and the open alerts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from gateway.api.alerts_models import alert_view
from gateway.api.slo import SloStatus, slo_status
from gateway.dashboard.charts import sparkline
from gateway.dashboard.render import page
from gateway.dashboard.sources import DashboardSources

STATUS_ORDER = {"unhealthy": 0, "degraded": 1, "stale": 2, "healthy": 3}


def slo_statuses(sources: DashboardSources, service: str | None = None) -> list[SloStatus]:
    """Every SLO's status (of one service when given), by name."""
    names = sorted(sources.slos.slos)
    found = [slo_status(sources.slos, name) for name in names]
    return [s for s in found if service is None or s.service == service]


def system_sparklines(sources: DashboardSources) -> dict[str, Any]:
    """Sparklines of the recent system samples, by what they show."""
    history = sources.health.system_history
    points = history.points() if history is not None else []
    series = {
        "cpu": ([p.cpu_utilization for p in points], "%", "Host CPU"),
        "memory": ([p.memory_utilization for p in points], "%", "Host memory"),
        "process_cpu": ([p.process_cpu_utilization for p in points], "%", "Gateway CPU"),
        "process_rss": ([float(p.process_rss_bytes) for p in points], "bytes", "Gateway RSS"),
    }
    return {
        key: sparkline(values, unit=unit, label=label)
        for key, (values, unit, label) in series.items()
    }


def add_routes(router: APIRouter, sources: DashboardSources) -> None:
    """``GET /``."""

    @router.get("/")
    async def overview(request: Request) -> HTMLResponse:
        health = await sources.health.health()
        services = await sources.health.services()
        alerts = (
            [alert_view(a) for a in sources.alerting.open_alerts()]
            if sources.alerting is not None
            else None
        )
        order = {"firing": 0, "acknowledged": 1, "pending": 2}
        if alerts is not None:
            alerts.sort(key=lambda a: (order.get(a.state, 3), a.started_at))
        return page(
            request,
            "overview.html",
            title="Overview",
            section="overview",
            refresh=sources.refresh,
            health=health,
            services=services,
            slos=slo_statuses(sources),
            alerts=alerts,
            sparklines=system_sparklines(sources),
        )
