"""The alerting service: evaluates the rules every ``evaluation_interval``, applies silences,
hands notifications to the outbox, and serves acknowledgements, silences and history.

Evaluations and API changes are serialised by one lock; store writes run in a worker thread,
one transaction per evaluation. State is loaded from the store on start, so firing alerts,
groups (what was notified when), silences and waiting notifications survive a restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from gateway.alerting.alerts import SEVERITIES, notification_to_json
from gateway.alerting.config import AlertingConfig
from gateway.alerting.delivery import Deliverer
from gateway.alerting.dispatch import Dispatcher, Outgoing
from gateway.alerting.engine import Alert, AlertEngine, Transition
from gateway.alerting.evaluation import Observations
from gateway.alerting.history import AlertHistory, Event, HistoryQuery, OutboxEntry
from gateway.alerting.log_counter import LogCounter
from gateway.alerting.matchers import Matcher
from gateway.alerting.notifiers.base import Notifier
from gateway.alerting.notifiers.build import build_notifiers
from gateway.alerting.routing import compile_route
from gateway.alerting.rules import RuleConfig
from gateway.alerting.silences import Silence, Silences, new_silence_id
from gateway.alerting.sources import GatewaySources
from gateway.tasks import cancel_and_wait

log = logging.getLogger("otelgate.alerting")

STATES = ("pending", "firing", "acknowledged")
RETENTION_EVERY = 3600.0


@dataclass(frozen=True, slots=True)
class AlertingMetrics:
    """``otelgate_alerts{state,severity}``, ``otelgate_notifications_total``, evaluations."""

    alerts: Gauge
    notifications: Counter
    evaluations: Counter
    evaluation_failures: Counter

    @classmethod
    def register(cls, registry: CollectorRegistry) -> AlertingMetrics:
        """The alerting metrics, in ``registry``."""
        return cls(
            Gauge("otelgate_alerts", "Open alerts by state and severity.",
                  ["state", "severity"], registry=registry),
            Counter("otelgate_notifications", "Notification delivery attempts by outcome "
                    "(sent, retried, failed).", ["receiver", "integration", "outcome"],
                    registry=registry),
            Counter("otelgate_alert_evaluations", "Rule evaluations run.", registry=registry),
            Counter("otelgate_alert_evaluation_failures", "Rule evaluations that failed.",
                    registry=registry),
        )  # fmt: skip


def notifiers_for(config: AlertingConfig) -> dict[tuple[str, str], Notifier]:
    """Every integration of every receiver, by (receiver, kind)."""
    ttl = 4 * max(config.resend_interval, config.evaluation_interval)
    return {
        (n.receiver, n.kind): n
        for name, receiver in config.receivers.items()
        for n in build_notifiers(name, receiver, firing_ttl=ttl)
    }


class AlertingService:
    """Rules, alerts, notifications and their history for one gateway."""

    def __init__(
        self,
        config: AlertingConfig,
        rules: Sequence[RuleConfig],
        observe: Callable[[], Awaitable[Observations]],
        history: AlertHistory,
        metrics: AlertingMetrics,
        *,
        external_url: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.observe = observe
        self.history = history
        self.metrics = metrics
        self.external_url = external_url
        self.clock = clock
        self.engine = AlertEngine(rules)
        self.silences = Silences()
        self.dispatcher = self._dispatcher(config)
        self.deliverer = Deliverer(
            history, notifiers_for(config), config.delivery, metrics.notifications, clock
        )
        self._resolved: dict[str, Alert] = {}  # resolved alerts still in a group
        self._ended: list[Alert] = []  # resolved by a reload, for the next evaluation
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._last_retention = 0.0
        self.log_counter: LogCounter | None = None  # told about new rules on reload
        self.sources: GatewaySources | None = None  # what observe() reads (set by setup)
        self.last_evaluation: float | None = None
        self.last_error: str | None = None

    def _dispatcher(self, config: AlertingConfig, old: Dispatcher | None = None) -> Dispatcher:
        kinds = {name: set(r.integrations()) for name, r in config.receivers.items()}
        return Dispatcher(
            compile_route(config.route) if config.route else None,
            external_url=self.external_url,
            resend_interval=config.resend_interval,
            forwarding=[n for n, k in kinds.items() if "alertmanager" in k],
            grouped=[n for n, k in kinds.items() if k - {"alertmanager"}],
            groups=old.groups.values() if old else (),
        )

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Load state from the store, then evaluate and deliver periodically."""
        opened = await asyncio.to_thread(self.history.load_open)
        self.engine.restore(opened, hold_until=self.clock() + self.config.restart_grace)
        groups = await asyncio.to_thread(self.history.load_groups)
        self.dispatcher.groups = {g.key: g for g in groups if g.route in self.dispatcher.routes}
        members = {m for g in groups for m in g.members} - {a.id for a in opened}
        resolved = await asyncio.to_thread(self.history.load_alerts, members)
        self._resolved = {a.id: a for a in resolved}
        self.silences = Silences(await asyncio.to_thread(self.history.load_silences))
        if opened:
            log.info("alerting: %d open alerts loaded from the store", len(opened))
        self._tasks = [
            asyncio.create_task(self._loop(), name="alert-evaluation"),
            asyncio.create_task(self.deliverer.run(), name="alert-delivery"),
        ]

    async def stop(self) -> None:
        """Stop evaluating and delivering (what waits stays in the outbox)."""
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks = []
        for notifier in self.deliverer.notifiers.values():
            await notifier.close()

    async def _loop(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.evaluate()
            except Exception as exc:
                self.metrics.evaluation_failures.inc()
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("alert evaluation failed")
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(0.0, self.config.evaluation_interval - elapsed))

    # -- one evaluation ------------------------------------------------------------------

    async def evaluate(self) -> list[Transition]:
        """Evaluate every rule now, queue what must be notified, save the changes."""
        seen = await self.observe()
        async with self._lock:
            now = self.clock()
            changes = self.engine.evaluate(seen, now)
            events = [_event(t) for t in changes]
            events += self._apply_silences(now)
            resolved = [t.alert for t in changes if t.after == "resolved"] + self._ended
            self._ended = []
            self._resolved.update((a.id, a) for a in resolved if a.fired)
            outgoing = self.dispatcher.tick(
                now, list(self.engine.alerts.values()), resolved, self._lookup
            )
            await self._save(now, [*self.engine.alerts.values(), *resolved], events, outgoing)
            kept = {m for g in self.dispatcher.groups.values() for m in g.members}
            self._resolved = {i: a for i, a in self._resolved.items() if i in kept}
        self.metrics.evaluations.inc()
        self.last_evaluation, self.last_error = now, None
        self._gauges()
        if now - self._last_retention >= RETENTION_EVERY:
            self._last_retention = now
            removed = await asyncio.to_thread(
                self.history.forget_before, now - self.config.retention
            )
            if removed:
                log.info("alert history retention removed %d alerts", removed)
        return changes

    def _lookup(self, alert_id: str) -> Alert | None:
        return self.engine.find(alert_id) or self._resolved.get(alert_id)

    def _apply_silences(self, now: float) -> list[Event]:
        events = []
        for alert in self.engine.alerts.values():
            ids = self.silences.silencing(alert.labels, now)
            if ids != alert.silenced_by:
                kind = "silenced" if ids else "unsilenced"
                events.append(Event(alert.id, now, kind, {"silences": ids or alert.silenced_by}))
                alert.silenced_by = ids
        return events

    async def _save(
        self, now: float, alerts: list[Alert], events: list[Event], outgoing: list[Outgoing]
    ) -> None:
        entries = []
        for item in outgoing:
            n = item.notification
            receiver = self.config.receivers.get(n.receiver)
            if receiver is None:
                continue
            kinds = set(receiver.integrations())
            kinds = (
                kinds & {"alertmanager"} if item.delivery == "forward" else kinds - {"alertmanager"}
            )
            payload = notification_to_json(n)
            ids = tuple(a.id for a in n.alerts)
            entries += [
                OutboxEntry(n.receiver, kind, n.group_key, payload, ids) for kind in sorted(kinds)
            ]
        groups = [
            self.dispatcher.groups[k]
            for k in self.dispatcher.changed
            if k in self.dispatcher.groups
        ]
        removed = list(self.dispatcher.removed)
        await asyncio.to_thread(self.history.save, alerts, events, groups, removed, entries, now)
        self.dispatcher.changed.clear()
        self.dispatcher.removed.clear()
        if entries:
            self.deliverer.wake.set()

    def _gauges(self) -> None:
        counts = {(s, v): 0 for s in STATES for v in SEVERITIES}
        for alert in self.engine.alerts.values():
            key = (alert.state, alert.severity)
            if key in counts:
                counts[key] += 1
        for (state, severity), n in counts.items():
            self.metrics.alerts.labels(state, severity).set(n)

    # -- the API -------------------------------------------------------------------------

    def open_alerts(self) -> list[Alert]:
        """Pending, firing and acknowledged alerts, newest first."""
        return sorted(self.engine.alerts.values(), key=lambda a: a.started_at, reverse=True)

    async def alert(self, alert_id: str) -> tuple[Alert, list[Event]] | None:
        """One alert (open or from history) and its timeline."""
        found = await asyncio.to_thread(self.history.get, alert_id)
        live = self.engine.find(alert_id)
        if found is None:
            return None if live is None else (live, [])
        return (live or found[0]), found[1]

    async def acknowledge(self, alert_id: str, by: str, comment: str | None) -> Alert:
        """Acknowledge an open alert (``KeyError``/``ValueError`` from the engine)."""
        async with self._lock:
            now = self.clock()
            alert = self.engine.acknowledge(alert_id, by, comment, now)
            event = Event(alert.id, now, "acknowledged", {"by": by, "comment": comment})
            await asyncio.to_thread(self.history.save, [alert], [event], now=now)
        self._gauges()
        return alert

    async def add_silence(
        self, matchers: Sequence[Matcher], starts_at: float | None, ends_at: float,
        created_by: str, comment: str,
    ) -> Silence:  # fmt: skip
        """Create a silence (it applies from the next evaluation)."""
        now = self.clock()
        silence = Silence(new_silence_id(), tuple(matchers), starts_at or now, ends_at,
                          created_by, comment, now)  # fmt: skip
        async with self._lock:
            self.silences.add(silence)
            await asyncio.to_thread(self.history.save_silence, silence)
        return silence

    async def expire_silence(self, silence_id: str) -> Silence:
        """End a silence now (``KeyError`` if unknown)."""
        async with self._lock:
            silence = self.silences.expire(silence_id, self.clock())
            await asyncio.to_thread(self.history.save_silence, silence)
        return silence

    async def query_history(self, query: HistoryQuery) -> tuple[list[Alert], int]:
        """Alerts of the history matching ``query``, and how many match."""
        return await asyncio.to_thread(self.history.query, query)

    # -- reload --------------------------------------------------------------------------

    async def reload(self, config: AlertingConfig, rules: Sequence[RuleConfig]) -> None:
        """Use a new configuration; open alerts of unchanged rules keep their state."""
        notifiers = notifiers_for(config)  # may raise: nothing changed yet
        async with self._lock:
            now = self.clock()
            ended = self.engine.replace_rules(rules, now)
            old = self.deliverer.notifiers
            self.config = config
            self.dispatcher = self._dispatcher(config, self.dispatcher)
            self.deliverer.config = config.delivery
            self.deliverer.replace_notifiers(notifiers)
            if self.log_counter is not None:
                self.log_counter.replace_rules(rules)
            events = [_event(t) for t in ended]
            self._ended += [t.alert for t in ended]
            await asyncio.to_thread(self.history.save, [t.alert for t in ended], events, now=now)
        for notifier in old.values():
            await notifier.close()


def _event(change: Transition) -> Event:
    alert = change.alert
    detail = {"from": change.before, "value": alert.value}
    return Event(alert.id, change.at, change.after, detail)
