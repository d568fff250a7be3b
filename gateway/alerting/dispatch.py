"""From alerts to notifications: routing, grouping, repeats, escalation (Alertmanager's model).

Each tick gets the open alerts and those resolved since the last tick, and returns what to
send. An alert joins the group of (route, grouping labels) of every route that takes it. A
new group is notified ``group_wait`` after it was created; then, at most every
``group_interval``, when its firing set changed or an alert of it resolved; and every
``repeat_interval`` while some of its firing alerts are unacknowledged. Silenced alerts are
left out. Escalation steps notify their receivers once about the alerts still firing and
unacknowledged ``after`` they fired, and again when those resolve.

Receivers with an Alertmanager integration also get every alert forwarded unbatched (as
Prometheus does): when it fires, when it resolves and every ``resend_interval`` while it
fires; Alertmanager does the grouping and deduplicates what several gateways send.

The groups' state is serialisable, so a restart continues it: nothing already notified is
notified again before its interval.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.alerting.alerts import Notification
from gateway.alerting.engine import Alert
from gateway.alerting.routing import Route

Delivery = Literal["grouped", "forward"]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A notification and which of the receiver's integrations take it."""

    notification: Notification
    delivery: Delivery


@dataclass(slots=True)
class Group:
    """One aggregation group's state."""

    key: str
    route: str
    labels: dict[str, str]
    created_at: float
    members: set[str] = field(default_factory=set)  # alert ids
    notified_firing: set[str] = field(default_factory=set)
    last_notified_at: float | None = None
    last_flush_at: float | None = None
    escalated: dict[str, int] = field(default_factory=dict)  # alert id -> steps done

    def to_json(self) -> str:
        """The state as JSON (sets as sorted lists)."""
        data = {
            "key": self.key,
            "route": self.route,
            "labels": self.labels,
            "created_at": self.created_at,
            "members": sorted(self.members),
            "notified_firing": sorted(self.notified_firing),
            "last_notified_at": self.last_notified_at,
            "last_flush_at": self.last_flush_at,
            "escalated": self.escalated,
        }
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Group:
        """A group from :meth:`to_json`."""
        data: dict[str, Any] = json.loads(text)
        return cls(
            key=data["key"],
            route=data["route"],
            labels=data["labels"],
            created_at=data["created_at"],
            members=set(data["members"]),
            notified_firing=set(data["notified_firing"]),
            last_notified_at=data["last_notified_at"],
            last_flush_at=data["last_flush_at"],
            escalated={k: int(v) for k, v in data["escalated"].items()},
        )


def group_key(route: Route, labels: Mapping[str, str]) -> str:
    """Alertmanager-like group key: ``<route id>:{label="value",...}``."""
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{route.id}:{{{inner}}}"


class Dispatcher:
    """Turns alert state into notifications; state in :attr:`groups`."""

    def __init__(
        self,
        root: Route | None,
        *,
        external_url: str,
        resend_interval: float,
        forwarding: Iterable[str] = (),
        grouped: Iterable[str] = (),
        groups: Iterable[Group] = (),
    ) -> None:
        self.root = root
        self.routes = {r.id: r for r in root.walk()} if root else {}
        self.external_url = external_url.rstrip("/")
        self.resend_interval = resend_interval
        self.forwarding = set(forwarding)  # receivers with an Alertmanager integration
        self.grouped = set(grouped)  # receivers with webhook/email/apprise integrations
        self.groups = {g.key: g for g in groups if g.route in self.routes}
        self.changed: set[str] = set()  # group keys changed since the caller last saved
        self.removed: set[str] = set()
        self._forwarded: dict[tuple[str, str], float] = {}  # (receiver, alert id) -> sent at

    def generator_url(self, alert: Alert) -> str:
        """Where the alert is shown (the gateway's API)."""
        return f"{self.external_url}/alerts/{alert.id}"

    def tick(
        self,
        now: float,
        open_alerts: Iterable[Alert],
        resolved: Iterable[Alert],
        lookup: Callable[[str], Alert | None],
    ) -> list[Outgoing]:
        """What to send at ``now``. ``lookup`` finds any alert by id (resolved ones too)."""
        if self.root is None:
            return []
        out: list[Outgoing] = []
        open_alerts = list(open_alerts)  # read twice below: a one-shot iterable would skip leaving
        firing = [a for a in open_alerts if a.active and not a.silenced_by]
        for alert in firing:
            for route in self.root.match(alert.labels):
                self._join(route, alert, now)
        for alert in open_alerts:  # silenced (or pending) alerts leave their groups
            if alert.silenced_by or not alert.active:
                self._leave(alert.id)
        ended = [a for a in resolved if a.fired]
        out += self._forward(now, firing, ended)
        for key in list(self.groups):
            out += self._check(self.groups[key], now, lookup)
        return out

    def _join(self, route: Route, alert: Alert, now: float) -> None:
        labels = route.group_labels(alert.labels)
        key = group_key(route, labels)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = Group(key, route.id, labels, created_at=now)
            self.changed.add(key)
        if alert.id not in group.members:
            group.members.add(alert.id)
            self.changed.add(key)

    def _leave(self, alert_id: str) -> None:
        for group in self.groups.values():
            if alert_id in group.members:
                group.members.discard(alert_id)
                group.notified_firing.discard(alert_id)
                self.changed.add(group.key)

    def _check(
        self, group: Group, now: float, lookup: Callable[[str], Alert | None]
    ) -> list[Outgoing]:
        route = self.routes[group.route]
        members = [a for a in map(lookup, sorted(group.members)) if a is not None]
        firing = [a for a in members if a.active]
        resolved = [a for a in members if a.state == "resolved" and a.id in group.notified_firing]
        told = {a.id for a in resolved}
        gone = [a.id for a in members if not a.active and a.id not in told]
        out = self._escalate(route, group, firing, resolved, now)
        due = False
        if group.last_notified_at is None:
            due = bool(firing) and now >= group.created_at + route.group_wait
        elif now >= (group.last_flush_at or 0.0) + route.group_interval:
            changed = {a.id for a in firing} != group.notified_firing or bool(resolved)
            waiting = any(a.state == "firing" for a in firing)  # unacknowledged
            repeat = waiting and now >= group.last_notified_at + route.repeat_interval
            due = changed or repeat
        if due and (firing or resolved):
            out += self._notify([route.receiver], group, [*firing, *resolved], 0)
            group.notified_firing = {a.id for a in firing}
            group.last_notified_at = group.last_flush_at = now
            gone += [a.id for a in resolved]
            self.changed.add(group.key)
        for alert_id in gone:
            group.members.discard(alert_id)
            group.escalated.pop(alert_id, None)
            self.changed.add(group.key)
        if not group.members:
            del self.groups[group.key]
            self.changed.discard(group.key)
            self.removed.add(group.key)
        return out

    def _escalate(
        self, route: Route, group: Group, firing: list[Alert], resolved: list[Alert], now: float
    ) -> list[Outgoing]:
        out: list[Outgoing] = []
        for step_no, step in enumerate(route.escalation, start=1):
            due = [
                a
                for a in firing
                if a.state == "firing"
                and a.fired_at is not None
                and now - a.fired_at >= step.after
                and group.escalated.get(a.id, 0) < step_no
            ]
            if due:
                out += self._notify(step.receivers, group, due, step_no)
                for alert in due:
                    group.escalated[alert.id] = step_no
                self.changed.add(group.key)
        ended = [a for a in resolved if group.escalated.get(a.id)]
        for step_no, step in enumerate(route.escalation, start=1):
            told = [a for a in ended if group.escalated[a.id] >= step_no]
            if told:
                out += self._notify(step.receivers, group, told, step_no)
        for alert in ended:  # told once; the route's own resolved notice may come later
            del group.escalated[alert.id]
            self.changed.add(group.key)  # saved, so a restart does not tell them again
        return out

    def _notify(
        self, receivers: Iterable[str], group: Group, alerts: list[Alert], escalation: int
    ) -> list[Outgoing]:
        snapshots = tuple(a.snapshot(self.generator_url(a)) for a in alerts)
        return [
            Outgoing(
                Notification(
                    receiver,
                    group.key,
                    dict(group.labels),
                    snapshots,
                    self.external_url,
                    escalation,
                ),
                "grouped",
            )
            for receiver in dict.fromkeys(receivers)
            if receiver in self.grouped
        ]

    def _forward(self, now: float, firing: list[Alert], ended: list[Alert]) -> list[Outgoing]:
        if not self.forwarding or self.root is None:
            return []
        batches: dict[str, list[Alert]] = {}
        for alert in firing:
            for route in self.root.match(alert.labels):
                if route.receiver not in self.forwarding:
                    continue
                sent = self._forwarded.get((route.receiver, alert.id))
                if sent is None or now - sent >= self.resend_interval:
                    self._forwarded[(route.receiver, alert.id)] = now
                    batches.setdefault(route.receiver, []).append(alert)
        for alert in ended:
            for route in self.root.match(alert.labels):
                if self._forwarded.pop((route.receiver, alert.id), None) is not None:
                    batches.setdefault(route.receiver, []).append(alert)
        return [
            Outgoing(
                Notification(
                    receiver,
                    "forward",
                    {},
                    tuple(a.snapshot(self.generator_url(a)) for a in alerts),
                    self.external_url,
                ),
                "forward",
            )
            for receiver, alerts in batches.items()
        ]
