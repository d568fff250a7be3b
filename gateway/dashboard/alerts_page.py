"""The Alerts page (``/ui/alerts``): open alerts with Ack and Silence buttons, the silences
with an Expire button and a form to add one, and the alert history with filters.

It reads what the JSON API serves (:mod:`gateway.api.alerts`): the same views, the same
history query; its buttons and form call that API (``dashboard.js``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from gateway.alerting.alerts import SEVERITIES
from gateway.alerting.engine import Alert
from gateway.alerting.history import HistoryQuery
from gateway.alerting.matchers import Matcher
from gateway.alerting.service import AlertingService
from gateway.api.alerts_models import AlertView, SilenceView, alert_view, silence_view
from gateway.api.times import epoch
from gateway.config.values import parse_window
from gateway.dashboard.render import identity_of, page, page_offset
from gateway.dashboard.sources import DashboardSources
from gateway.security.auth import ANONYMOUS

HISTORY_PAGE = 50
EXPIRED_SHOWN = 20  # expired silences listed (the most recent)
STATES = ("pending", "firing", "acknowledged", "resolved")
OPEN_ORDER = {"firing": 0, "acknowledged": 1, "pending": 2}
SINCE_CHOICES = (
    ("", "Any time"),
    ("1h", "Last hour"),
    ("6h", "Last 6 hours"),
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
)
DURATIONS = (
    (900, "15 minutes"),
    (1800, "30 minutes"),
    (3600, "1 hour"),
    (7200, "2 hours"),
    (14400, "4 hours"),
    (28800, "8 hours"),
    (86400, "1 day"),
    (604800, "1 week"),
)
DEFAULT_DURATION = 3600


@dataclass(frozen=True, slots=True)
class HistoryFilters:
    """The history form's values ('' for any) and the page's offset."""

    service: str = ""
    rule: str = ""
    severity: str = ""
    state: str = ""
    since: str = ""
    offset: int = 0

    def query(self, now: float) -> tuple[HistoryQuery, str | None]:
        """The history query, and what is wrong with ``since`` (then ignored)."""
        after, problem = None, None
        if self.since:
            try:
                after = now - parse_window(self.since)
            except ValueError:
                try:
                    after = epoch(datetime.fromisoformat(self.since))
                except ValueError:
                    problem = f"since: {self.since!r} is neither a duration (6h, 7d) nor a time"
        query = HistoryQuery(
            service=self.service or None, rule=self.rule or None, severity=self.severity or None,
            state=self.state or None, since=after, limit=HISTORY_PAGE, offset=self.offset,
        )  # fmt: skip
        return query, problem

    def link(self, offset: int) -> str:
        """This page's URL with these filters at ``offset``."""
        params = {k: v for k, v in asdict(replace(self, offset=offset)).items() if v}
        return "/ui/alerts" + (f"?{urlencode(params)}" if params else "") + "#history"


def history_filters(params: Mapping[str, str]) -> HistoryFilters:
    """The filters of a query string (unknown or malformed values are left out)."""
    text = {name: params.get(name, "").strip()[:200] for name in
            ("service", "rule", "severity", "state", "since")}  # fmt: skip
    return HistoryFilters(**text, offset=page_offset(params))


def open_alerts(service: AlertingService) -> list[AlertView]:
    """Firing, then acknowledged, then pending alerts, newest first within each."""
    found = sorted(service.open_alerts(), key=lambda a: (OPEN_ORDER.get(a.state, 3), -a.started_at))
    return [alert_view(a) for a in found]


def silences(service: AlertingService) -> tuple[list[SilenceView], int]:
    """Active and pending silences (ending soonest first), then the most recently ended;
    and how many ended ones are left out."""
    now = service.clock()
    known = list(service.silences.by_id.values())
    current = sorted((s for s in known if s.ends_at > now), key=lambda s: (s.ends_at, s.id))
    ended = sorted((s for s in known if s.ends_at <= now), key=lambda s: (-s.ends_at, s.id))
    shown = current + ended[:EXPIRED_SHOWN]
    return [silence_view(s, now) for s in shown], max(0, len(ended) - EXPIRED_SHOWN)


def silenced_counts(alerts: list[AlertView]) -> dict[str, int]:
    """How many open alerts each silence silences."""
    counts: dict[str, int] = {}
    for alert in alerts:
        for silence_id in alert.silenced_by:
            counts[silence_id] = counts.get(silence_id, 0) + 1
    return counts


async def silence_template(service: AlertingService, alert_id: str) -> tuple[Alert | None, str]:
    """The alert to silence (open or from the history) and its labels as matchers, one per
    line."""
    alert = service.engine.find(alert_id)
    if alert is None and service.history.has_store:
        found = await service.alert(alert_id)
        alert = found[0] if found is not None else None
    if alert is None:
        return None, ""
    return alert, "\n".join(str(Matcher(k, v)) for k, v in sorted(alert.labels.items()))


def rule_names(service: AlertingService) -> list[str]:
    """The configured rules' names, for the history form's suggestions."""
    return sorted(service.engine.rules)


def add_routes(router: APIRouter, sources: DashboardSources) -> None:
    """``GET /ui/alerts``."""

    @router.get("/ui/alerts")
    async def alerts(request: Request) -> HTMLResponse:
        service = sources.alerting
        common: dict[str, Any] = {"title": "Alerts", "section": "alerts",
                                  "refresh": sources.refresh}  # fmt: skip
        if service is None:
            return page(request, "alerts.html", **common, enabled=False)
        params = request.query_params
        filters = history_filters(params)
        query, problem = filters.query(service.clock())
        stored = service.history.has_store  # not before the gateway opened its store
        history, total = await service.query_history(query) if stored else ([], 0)
        active = open_alerts(service)
        silence_list, ended_hidden = silences(service)
        silence_for, matchers = None, ""
        wanted = params.get("silence", "").strip()
        if wanted:
            silence_for, matchers = await silence_template(service, wanted[:200])
        who = identity_of(request)
        shown_end = filters.offset + len(history)
        return page(
            request,
            "alerts.html",
            **common,
            enabled=True,
            active=active,
            ack_body=json.dumps({"by": "dashboard" if who is ANONYMOUS else who.name}),
            silences=silence_list,
            silenced_counts=silenced_counts(active),
            ended_hidden=ended_hidden,
            silence_wanted=wanted,
            silence_for=silence_for,
            silence_matchers=matchers,
            durations=DURATIONS,
            default_duration=DEFAULT_DURATION,
            filters=filters,
            filter_problem=problem,
            since_choices=SINCE_CHOICES,
            severities=SEVERITIES,
            states=STATES,
            rules=rule_names(service),
            stored=stored,
            history=[alert_view(a) for a in history],
            total=total,
            first=filters.offset + 1 if history else 0,
            last=shown_end,
            newer=filters.link(max(0, filters.offset - HISTORY_PAGE)) if filters.offset else None,
            older=filters.link(shown_end) if shown_end < total else None,
        )
