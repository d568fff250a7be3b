"""The alerting API on the admin listener: alerts, acknowledgements, silences, history.

``GET /alerts``, ``GET /alerts/history``, ``GET /alerts/{id}``, ``POST /alerts/{id}/ack``,
``GET|POST /silences``, ``DELETE /silences/{id}`` (docs/alerting.md#api).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query

from gateway.alerting.history import HistoryQuery
from gateway.alerting.matchers import Matcher, parse_matcher
from gateway.alerting.service import AlertingService
from gateway.api.alerts_models import (
    AckRequest,
    AlertDetail,
    AlertList,
    AlertPage,
    AlertView,
    SilenceList,
    SilenceRequest,
    SilenceView,
    alert_detail,
    alert_view,
    silence_view,
)
from gateway.api.times import epoch as _epoch

MAX_PAGE = 1000


def alerts_router(service: AlertingService) -> APIRouter:
    """The alerting routes, for ``Gateway.admin_routers``."""
    router = APIRouter(tags=["alerts"])

    @router.get("/alerts", response_model=AlertList, summary="Open alerts")
    async def open_alerts(
        state: str | None = None, service_name: str | None = Query(None, alias="service"),
        severity: str | None = None,
    ) -> AlertList:  # fmt: skip
        found = [
            alert_view(a)
            for a in service.open_alerts()
            if state in (None, a.state) and service_name in (None, a.service)
            and severity in (None, a.severity)
        ]  # fmt: skip
        return AlertList(count=len(found), alerts=found)

    @router.get("/alerts/rules", summary="The rules being evaluated")
    async def rules() -> dict[str, Any]:
        found = [
            {
                "name": r.name, "service": r.service, "condition": r.condition.model_dump(
                    mode="json", exclude_none=True), "for": r.for_,
                "keep_firing_for": r.keep_firing_for, "severity": r.severity,
                "labels": r.labels, "annotations": r.annotations,
            }
            for r in service.engine.rules.values()
        ]  # fmt: skip
        return {"count": len(found), "rules": found}

    @router.get("/alerts/history", response_model=AlertPage, summary="Alert history")
    async def history(
        service_name: str | None = Query(None, alias="service"),
        rule: str | None = None,
        severity: str | None = None,
        state: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = Query(100, ge=1, le=MAX_PAGE),
        offset: int = Query(0, ge=0),
    ) -> AlertPage:
        query = HistoryQuery(
            service=service_name, rule=rule, severity=severity, state=state,
            since=_epoch(since) if since else None,
            until=_epoch(until) if until else None, limit=limit, offset=offset,
        )  # fmt: skip
        alerts, total = await service.query_history(query)
        more = offset + len(alerts) < total
        return AlertPage(
            total=total, limit=limit, offset=offset,
            next_offset=offset + len(alerts) if more else None,
            alerts=[alert_view(a) for a in alerts],
        )  # fmt: skip

    @router.get(
        "/alerts/{alert_id}",
        response_model=AlertDetail,
        summary="One alert with its timeline",
        responses={404: {"description": "No such alert"}},
    )
    async def one_alert(alert_id: str) -> AlertDetail:
        found = await service.alert(alert_id)
        if found is None:
            raise HTTPException(404, f"no alert with id '{alert_id}'")
        return alert_detail(*found)

    @router.post(
        "/alerts/{alert_id}/ack",
        response_model=AlertView,
        summary="Acknowledge a firing alert: no more repeats or escalation until it resolves",
        responses={404: {"description": "No open alert has this id"},
                   409: {"description": "The alert is pending"}},
    )  # fmt: skip
    async def acknowledge(alert_id: str, body: AckRequest) -> AlertView:
        try:
            alert = await service.acknowledge(alert_id, body.by, body.comment)
        except KeyError:
            found = await service.alert(alert_id)
            if found is not None:
                raise HTTPException(409, f"alert '{alert_id}' is {found[0].state}") from None
            raise HTTPException(404, f"no open alert with id '{alert_id}'") from None
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None
        return alert_view(alert)

    @router.get("/silences", response_model=SilenceList, summary="Silences")
    async def silences() -> SilenceList:
        now = service.clock()
        found = sorted(service.silences.by_id.values(), key=lambda s: s.created_at)
        return SilenceList(silences=[silence_view(s, now) for s in found])

    @router.post("/silences", response_model=SilenceView, status_code=201,
                 summary="Silence the alerts matching some labels for a while")  # fmt: skip
    async def add_silence(body: SilenceRequest) -> SilenceView:
        matchers = _matchers(body)
        now = service.clock()
        starts = _epoch(body.starts_at) if body.starts_at else now
        if body.ends_at is not None and body.duration is not None:
            raise HTTPException(422, "give ends_at or duration, not both")
        if body.ends_at is None and body.duration is None:
            raise HTTPException(422, "a silence needs ends_at or duration")
        ends = _epoch(body.ends_at) if body.ends_at else starts + (body.duration or 0)
        if ends <= max(starts, now):
            raise HTTPException(422, "ends_at must be in the future and after starts_at")
        silence = await service.add_silence(matchers, starts, ends, body.created_by, body.comment)
        return silence_view(silence, service.clock())

    @router.delete("/silences/{silence_id}", response_model=SilenceView,
                   summary="Expire a silence now")  # fmt: skip
    async def expire(silence_id: str) -> SilenceView:
        try:
            silence = await service.expire_silence(silence_id)
        except KeyError:
            raise HTTPException(404, f"no silence with id '{silence_id}'") from None
        return silence_view(silence, service.clock())

    return router


def _matchers(body: SilenceRequest) -> list[Matcher]:
    found = []
    for i, item in enumerate(body.matchers):
        try:
            if isinstance(item, str):
                found.append(parse_matcher(item))
            else:
                found.append(Matcher(item.name, item.value, item.isRegex, item.isEqual))
        except ValueError as exc:
            raise HTTPException(422, f"matchers[{i}]: {exc}") from None
    if all(m.matches({}) for m in found):
        raise HTTPException(422, "at least one matcher must not match the empty string")
    return found
