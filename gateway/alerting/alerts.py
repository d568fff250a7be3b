"""What alerting hands around: an alert as notifications show it, and a notification."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

AlertState = Literal["pending", "firing", "acknowledged", "resolved"]
Severity = Literal["critical", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")


_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_SEPARATOR = 0xFF


def fingerprint(labels: Mapping[str, str]) -> str:
    """The label set's fingerprint as Alertmanager computes it (FNV-1a 64 over the sorted
    names and values, each followed by 0xff), as 16 hex digits."""
    value = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in (*part.encode(), _SEPARATOR):
                value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{value:016x}"


@dataclass(frozen=True, slots=True)
class AlertSnapshot:
    """One alert at the moment a notification is built (Alertmanager's alert fields).

    ``labels`` include ``alertname`` (the rule's name), ``severity`` and, for per-service rules,
    ``service``. ``ends_at`` is None while firing. Times are wall-clock seconds.
    """

    id: str
    status: Literal["firing", "resolved"]
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: float
    ends_at: float | None
    generator_url: str
    fingerprint: str
    value: float | None = None
    acknowledged_by: str | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    """What one receiver is told about one alert group at one time.

    ``group_key`` identifies the group (route and grouping labels), ``group_labels`` are the
    labels it groups by, ``alerts`` the group's firing alerts and those resolved since the
    last notification. ``status`` is ``firing`` when any alert fires.
    """

    receiver: str
    group_key: str
    group_labels: Mapping[str, str]
    alerts: tuple[AlertSnapshot, ...]
    external_url: str
    escalation: int = 0  # 0: the route's receivers; n: the n-th escalation step
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def status(self) -> Literal["firing", "resolved"]:
        """``firing`` if any alert fires, else ``resolved``."""
        return "firing" if any(a.status == "firing" for a in self.alerts) else "resolved"

    @property
    def common_labels(self) -> dict[str, str]:
        """Labels every alert of the notification has with the same value."""
        return _common([a.labels for a in self.alerts])

    @property
    def common_annotations(self) -> dict[str, str]:
        """Annotations every alert of the notification has with the same value."""
        return _common([a.annotations for a in self.alerts])


def _common(maps: list[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = dict(maps[0])
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


def notification_to_json(n: Notification) -> str:
    """A notification as JSON (the outbox keeps it so)."""
    data = {
        "receiver": n.receiver,
        "group_key": n.group_key,
        "group_labels": dict(n.group_labels),
        "external_url": n.external_url,
        "escalation": n.escalation,
        "extra": dict(n.extra),
        "alerts": [
            {
                "id": a.id,
                "status": a.status,
                "labels": dict(a.labels),
                "annotations": dict(a.annotations),
                "starts_at": a.starts_at,
                "ends_at": a.ends_at,
                "generator_url": a.generator_url,
                "fingerprint": a.fingerprint,
                "value": a.value,
                "acknowledged_by": a.acknowledged_by,
            }
            for a in n.alerts
        ],
    }
    return json.dumps(data, sort_keys=True)


def notification_from_json(text: str) -> Notification:
    """A notification from :func:`notification_to_json`."""
    data: dict[str, Any] = json.loads(text)
    alerts = tuple(AlertSnapshot(**a) for a in data["alerts"])
    return Notification(
        receiver=data["receiver"],
        group_key=data["group_key"],
        group_labels=data["group_labels"],
        alerts=alerts,
        external_url=data["external_url"],
        escalation=data["escalation"],
        extra=data["extra"],
    )
