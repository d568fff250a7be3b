"""The alert state machine: rules evaluated over observations become alerts.

An alert is one label set of one rule, from the evaluation its condition first held until it
resolves: ``pending`` while the condition has held for less than the rule's ``for``,
``firing`` after, ``acknowledged`` once someone acknowledged it (it still fires; repeats and
escalation stop), ``resolved`` when the condition has not held for ``keep_firing_for``. A
pending alert whose condition stops holding is resolved without ever having fired (no
notification). The same label set firing again later is a new alert with a new id.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.alerting.alerts import AlertSnapshot, AlertState, fingerprint
from gateway.alerting.evaluation import Observations, Sample, evaluate, format_value
from gateway.alerting.rules import RuleConfig, render


@dataclass(slots=True)
class Alert:
    """One alert and everything the API shows about it (times: wall clock seconds)."""

    id: str
    rule: str
    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    severity: str
    state: AlertState
    value: float
    started_at: float  # the condition first held (pending since)
    last_held_at: float
    fired_at: float | None = None
    resolved_at: float | None = None
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    ack_comment: str | None = None
    silenced_by: list[str] = field(default_factory=list)

    @property
    def service(self) -> str | None:
        """The service the alert is about, if any."""
        return self.labels.get("service")

    @property
    def fired(self) -> bool:
        """Whether it ever fired (only those are notified)."""
        return self.fired_at is not None

    @property
    def active(self) -> bool:
        """Firing or acknowledged."""
        return self.state in ("firing", "acknowledged")

    def snapshot(self, generator_url: str) -> AlertSnapshot:
        """The alert as notifications carry it."""
        return AlertSnapshot(
            id=self.id,
            status="resolved" if self.state == "resolved" else "firing",
            labels=dict(self.labels),
            annotations=dict(self.annotations),
            starts_at=self.fired_at or self.started_at,
            ends_at=self.resolved_at if self.state == "resolved" else None,
            generator_url=generator_url,
            fingerprint=self.fingerprint,
            value=self.value,
            acknowledged_by=self.acknowledged_by,
        )

    def as_row(self) -> dict[str, Any]:
        """Every field, for the store."""
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class Transition:
    """An alert changed state (``before`` None: it was created)."""

    alert: Alert
    before: AlertState | None
    after: AlertState
    at: float


def new_id() -> str:
    """A fresh alert id (12 hex digits)."""
    return secrets.token_hex(6)


class AlertEngine:
    """Holds the open alerts (pending, firing, acknowledged) and moves them on each evaluation."""

    def __init__(self, rules: Sequence[RuleConfig], open_alerts: Iterable[Alert] = ()) -> None:
        self.rules = {rule.name: rule for rule in rules if rule.enabled}
        self.alerts: dict[tuple[str, str], Alert] = {}
        self._restored: set[str] = set()  # ids of alerts loaded after a restart
        self._hold_until = 0.0
        self.restore(open_alerts)

    def restore(self, open_alerts: Iterable[Alert], hold_until: float = 0.0) -> None:
        """Take the open alerts saved before a restart. Until ``hold_until`` they are not
        resolved for want of data: the windows the conditions read (service health, log
        counts) start empty in a new process, and resolving then would notify a resolution
        and a new firing for every alert that still holds."""
        self.alerts = {(a.rule, a.fingerprint): a for a in open_alerts if a.state != "resolved"}
        self._restored = {a.id for a in self.alerts.values()}
        self._hold_until = hold_until

    def replace_rules(self, rules: Sequence[RuleConfig], now: float) -> list[Transition]:
        """Use new rules (a reload). Alerts of rules that are gone or changed condition are
        resolved; alerts of unchanged rules keep their state."""
        old = self.rules
        self.rules = {rule.name: rule for rule in rules if rule.enabled}
        changed = {name for name, rule in old.items() if self.rules.get(name) != rule}
        kept = {n for n in changed if n in self.rules and _same_alerts(old[n], self.rules[n])}
        ended = []
        for key, alert in list(self.alerts.items()):
            if alert.rule in changed and alert.rule not in kept:
                ended.append(self._resolve(key, alert, now))
        return ended

    def evaluate(self, seen: Observations, now: float) -> list[Transition]:
        """Evaluate every rule at ``now``; the transitions it caused."""
        if self._restored and now >= self._hold_until:
            self._restored.clear()
        changes: list[Transition] = []
        for rule in self.rules.values():
            held: set[str] = set()
            for sample in evaluate(rule, seen):
                alert, change = self._hold(rule, sample, now)
                held.add(alert.fingerprint)
                if change is not None:
                    changes.append(change)
            for key, alert in list(self.alerts.items()):
                if alert.rule != rule.name or alert.fingerprint in held:
                    continue
                if alert.id in self._restored and now < self._hold_until:
                    continue  # restored after a restart: its window is still filling
                if alert.state == "pending" or now - alert.last_held_at >= rule.keep_firing_for:
                    changes.append(self._resolve(key, alert, now))
        for key, alert in list(self.alerts.items()):  # rules disabled since
            if alert.rule not in self.rules:
                changes.append(self._resolve(key, alert, now))
        return changes

    def _hold(
        self, rule: RuleConfig, sample: Sample, now: float
    ) -> tuple[Alert, Transition | None]:
        labels = {"alertname": rule.name, "severity": rule.severity, **rule.labels, **sample.labels}
        key = (rule.name, fingerprint(labels))
        annotations = _annotations(rule, sample, labels)
        alert = self.alerts.get(key)
        if alert is None:
            alert = Alert(
                id=new_id(),
                rule=rule.name,
                fingerprint=key[1],
                labels=labels,
                annotations=annotations,
                severity=rule.severity,
                state="pending",
                value=sample.value,
                started_at=now,
                last_held_at=now,
            )
            self.alerts[key] = alert
            if rule.for_ <= 0:
                alert.state, alert.fired_at = "firing", now
                return alert, Transition(alert, None, "firing", now)
            return alert, Transition(alert, None, "pending", now)
        alert.value, alert.last_held_at, alert.annotations = sample.value, now, annotations
        if alert.state == "pending" and now - alert.started_at >= rule.for_:
            alert.state, alert.fired_at = "firing", now
            return alert, Transition(alert, "pending", "firing", now)
        return alert, None

    def _resolve(self, key: tuple[str, str], alert: Alert, now: float) -> Transition:
        before = alert.state
        alert.state, alert.resolved_at = "resolved", now
        del self.alerts[key]
        return Transition(alert, before, "resolved", now)

    def acknowledge(self, alert_id: str, by: str, comment: str | None, now: float) -> Alert:
        """Acknowledge a firing alert (``KeyError``: no open alert has that id; ``ValueError``:
        it is pending)."""
        alert = self.find(alert_id)
        if alert is None:
            raise KeyError(alert_id)
        if alert.state == "pending":
            raise ValueError("a pending alert cannot be acknowledged: it has not fired")
        alert.state = "acknowledged"
        alert.acknowledged_by, alert.acknowledged_at, alert.ack_comment = by, now, comment
        return alert

    def find(self, alert_id: str) -> Alert | None:
        """The open alert with this id."""
        return next((a for a in self.alerts.values() if a.id == alert_id), None)


def _same_alerts(a: RuleConfig, b: RuleConfig) -> bool:
    """Whether two versions of a rule describe the same alerts (only timing, thresholds or
    annotations changed): their state carries over a reload."""
    return (a.condition.kind, a.service, a.severity, a.labels) == (
        b.condition.kind,
        b.service,
        b.severity,
        b.labels,
    )


def _annotations(rule: RuleConfig, sample: Sample, labels: Mapping[str, str]) -> dict[str, str]:
    values = {
        "service": labels.get("service", ""),
        "value": format_value(sample.value, sample.unit),
        "threshold": ""
        if sample.threshold is None
        else format_value(sample.threshold, sample.unit),
        "rule": rule.name,
        "severity": rule.severity,
    }
    return {key: render(text, values, labels) for key, text in rule.annotations.items()}
