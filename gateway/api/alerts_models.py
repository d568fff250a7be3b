"""The response and request bodies of the alerting API (documented in ``/openapi.json``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from gateway.alerting.engine import Alert
from gateway.alerting.history import Event
from gateway.alerting.silences import Silence


class AlertView(BaseModel):
    """One alert."""

    id: str
    rule: str
    service: str | None
    state: str = Field(description="pending, firing, acknowledged or resolved")
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float
    started_at: datetime = Field(description="When the condition first held")
    fired_at: datetime | None
    resolved_at: datetime | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    ack_comment: str | None
    silenced_by: list[str]
    fingerprint: str


class TimelineEntry(BaseModel):
    """A state change, acknowledgement, silence or notification of an alert."""

    at: datetime
    kind: str
    detail: dict[str, Any]


class AlertDetail(AlertView):
    """One alert with its timeline, oldest first."""

    timeline: list[TimelineEntry]


class AlertList(BaseModel):
    """Open alerts (pending, firing, acknowledged), newest first."""

    count: int
    alerts: list[AlertView]


class AlertPage(BaseModel):
    """A page of the alert history, newest first."""

    total: int
    limit: int
    offset: int
    next_offset: int | None
    alerts: list[AlertView]


class AckRequest(BaseModel):
    """Who acknowledges, and why."""

    by: str = Field(min_length=1, max_length=200)
    comment: str | None = Field(default=None, max_length=2000)


class MatcherBody(BaseModel):
    """A label matcher in Alertmanager's v2 shape."""

    name: str
    value: str
    isRegex: bool = False
    isEqual: bool = True


class SilenceRequest(BaseModel):
    """A new silence: matchers (``name="value"`` text or objects), until ``ends_at`` (or for
    ``duration`` seconds), from ``starts_at`` (default now)."""

    matchers: list[str | MatcherBody] = Field(min_length=1)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    duration: float | None = Field(default=None, gt=0)
    created_by: str = Field(min_length=1, max_length=200)
    comment: str = Field(default="", max_length=2000)


class SilenceView(BaseModel):
    """One silence."""

    id: str
    matchers: list[str]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime
    state: str = Field(description="pending, active or expired")


class SilenceList(BaseModel):
    """Every silence known (expired ones until retention removes them)."""

    silences: list[SilenceView]


def at(seconds: float) -> datetime:
    """A UTC datetime from wall-clock seconds."""
    return datetime.fromtimestamp(seconds, UTC)


def from_epoch(seconds: float | None) -> datetime | None:
    """A UTC datetime, or None."""
    return None if seconds is None else at(seconds)


def alert_view(alert: Alert) -> AlertView:
    """The API view of an alert."""
    return AlertView(**_fields(alert))


def alert_detail(alert: Alert, events: list[Event]) -> AlertDetail:
    """The API view of an alert with its timeline."""
    timeline = [TimelineEntry(at=at(e.at), kind=e.kind, detail=e.detail) for e in events]
    return AlertDetail(**_fields(alert), timeline=timeline)


def _fields(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id, "rule": alert.rule, "service": alert.service, "state": alert.state,
        "severity": alert.severity, "labels": alert.labels, "annotations": alert.annotations,
        "value": alert.value, "started_at": at(alert.started_at),
        "fired_at": from_epoch(alert.fired_at), "resolved_at": from_epoch(alert.resolved_at),
        "acknowledged_by": alert.acknowledged_by,
        "acknowledged_at": from_epoch(alert.acknowledged_at), "ack_comment": alert.ack_comment,
        "silenced_by": alert.silenced_by, "fingerprint": alert.fingerprint,
    }  # fmt: skip


def silence_view(silence: Silence, now: float) -> SilenceView:
    """The API view of a silence."""
    return SilenceView(
        id=silence.id,
        matchers=[str(m) for m in silence.matchers],
        starts_at=at(silence.starts_at),
        ends_at=at(silence.ends_at),
        created_by=silence.created_by,
        comment=silence.comment,
        created_at=at(silence.created_at),
        state=silence.state(now),
    )
