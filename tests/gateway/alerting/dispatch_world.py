"""A dispatcher under test: alerts by hand, ticks, and what it told whom."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gateway.alerting.config import RouteConfig
from gateway.alerting.dispatch import Dispatcher, Group, Outgoing
from gateway.alerting.engine import Alert
from gateway.alerting.routing import Route, compile_route

T0 = 1_800_000_000.0
URL = "http://gw.example:8888"


def route(**config: Any) -> Route:
    return compile_route(RouteConfig.model_validate(config))


# -- the dispatcher --------------------------------------------------------------------------


class World:
    """Alerts by hand and a dispatcher ticking over them; after each tick the groups it
    marked changed or removed are saved (as JSON, like the alerting service does)."""

    def __init__(
        self,
        config: dict[str, Any],
        *,
        grouped: Iterable[str] = ("team", "oncall", "boss"),
        forwarding: Iterable[str] = (),
        resend_interval: float = 60.0,
        groups: Iterable[Group] = (),
    ) -> None:
        self.config = config
        self.options: dict[str, Any] = {
            "grouped": grouped, "forwarding": forwarding, "resend_interval": resend_interval
        }  # fmt: skip
        self.root = route(**config)
        self.dispatcher = Dispatcher(
            self.root,
            external_url=URL + "/",
            resend_interval=resend_interval,
            forwarding=forwarding,
            grouped=grouped,
            groups=groups,
        )
        self.alerts: dict[str, Alert] = {}
        self._resolved: list[Alert] = []
        self.saved: dict[str, str] = {}  # group key -> state

    def fire(self, alert_id: str, at: float, **labels: str) -> Alert:
        alert = Alert(
            id=alert_id,
            rule=labels.get("alertname", "Errors"),
            fingerprint=alert_id,
            labels={"alertname": "Errors", "severity": "critical", **labels},
            annotations={"summary": f"{alert_id} is bad"},
            severity=labels.get("severity", "critical"),
            state="firing",
            value=1.0,
            started_at=at,
            last_held_at=at,
            fired_at=at,
        )
        self.alerts[alert_id] = alert
        return alert

    def resolve(self, alert_id: str, at: float) -> None:
        alert = self.alerts[alert_id]
        alert.state, alert.resolved_at = "resolved", at
        self._resolved.append(alert)

    def ack(self, alert_id: str, at: float) -> None:
        alert = self.alerts[alert_id]
        alert.state, alert.acknowledged_by, alert.acknowledged_at = "acknowledged", "alice", at

    def tick(self, now: float) -> list[Outgoing]:
        opened = [a for a in self.alerts.values() if a.state != "resolved"]
        resolved, self._resolved = self._resolved, []
        out = self.dispatcher.tick(now, opened, resolved, self.alerts.get)
        dispatcher = self.dispatcher
        for key in dispatcher.changed:
            if key in dispatcher.groups:
                self.saved[key] = dispatcher.groups[key].to_json()
        for key in dispatcher.removed:
            self.saved.pop(key, None)
        dispatcher.changed.clear()
        dispatcher.removed.clear()
        return out

    def restarted(self) -> World:
        """A new dispatcher with the saved groups, over the same alerts (from the store)."""
        groups = [Group.from_json(text) for text in self.saved.values()]
        again = World(self.config, groups=groups, **self.options)
        again.alerts, again.saved = self.alerts, dict(self.saved)
        return again

    def ticks(self, start: float, stop: float, step: float = 1.0) -> list[tuple[float, Outgoing]]:
        """Tick every ``step`` from ``start`` to before ``stop``: what went out, when."""
        sent = []
        now = start
        while now < stop:
            sent += [(now, o) for o in self.tick(now)]
            now += step
        return sent


def told(out: Iterable[Outgoing]) -> list[tuple[str, int, list[tuple[str, str]]]]:
    """(receiver, escalation, [(alert id, status), ...]) per notification."""
    return [
        (o.notification.receiver, o.notification.escalation,
         [(a.id, a.status) for a in o.notification.alerts])
        for o in out
    ]  # fmt: skip


SIMPLE = {
    "receiver": "team",
    "group_by": ["alertname"],
    "group_wait": "10s",
    "group_interval": "1m",
    "repeat_interval": "1h",
}


ESCALATING = {
    **SIMPLE,
    "escalation": [
        {"after": "15m", "receivers": ["oncall"]},
        {"after": "1h", "receivers": ["boss", "oncall"]},
    ],
}
