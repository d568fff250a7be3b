"""Delivering the outbox: every notification accepted for sending is in the store first, then
sent, then marked; so it survives a restart and is sent once (twice only if the process dies
between a successful send and the mark: delivery is at-least-once).

Failures are retried with exponential backoff (honouring ``Retry-After``) until
``alerting.delivery.max_elapsed_time`` has passed since the notification was queued; a
permanent error (a 4xx, a refused recipient) fails it at once. A group's notifications go
out in order: a later one waits while an earlier one is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from prometheus_client import Counter

from exporters.retry import RetryPolicy
from gateway.alerting.alerts import notification_from_json
from gateway.alerting.config import DeliveryConfig
from gateway.alerting.history import AlertHistory, Waiting
from gateway.alerting.notifiers.base import Notifier
from gateway.errors import PermanentError, RetryableError

log = logging.getLogger("otelgate.alerting")

MAX_PARALLEL = 8
IDLE_WAKE = 5.0  # seconds between outbox checks when nothing is due


@dataclass(slots=True)
class IntegrationStatus:
    """Delivery state of one integration of one receiver."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    last_success_at: float | None = None


class Deliverer:
    """Sends what the outbox holds through the configured notifiers."""

    def __init__(
        self,
        history: AlertHistory,
        notifiers: Mapping[tuple[str, str], Notifier],
        config: DeliveryConfig,
        counter: Counter,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.history = history
        self.notifiers = dict(notifiers)
        self.config = config
        self.counter = counter
        self.clock = clock
        self.status: dict[tuple[str, str], IntegrationStatus] = {
            key: IntegrationStatus() for key in notifiers
        }
        self.wake = asyncio.Event()
        self._slots = asyncio.Semaphore(MAX_PARALLEL)

    @property
    def policy(self) -> RetryPolicy:
        """The backoff between attempts."""
        c = self.config
        return RetryPolicy(
            initial_interval=c.initial_interval,
            max_interval=c.max_interval,
            max_elapsed_time=c.max_elapsed_time,
        )

    def replace_notifiers(self, notifiers: Mapping[tuple[str, str], Notifier]) -> None:
        """Use new notifiers (a reload); statuses of integrations that stay are kept."""
        self.notifiers = dict(notifiers)
        self.status = {key: self.status.get(key, IntegrationStatus()) for key in notifiers}

    async def run(self) -> None:
        """Deliver until cancelled."""
        while True:
            self.wake.clear()  # before looking: a wake-up during the delivery is kept
            try:
                await self.deliver_due()
                upcoming = await asyncio.to_thread(self.history.next_attempt)
            except Exception:
                log.exception("notification delivery failed; trying again in %.0fs", IDLE_WAKE)
                upcoming = None
            wait = IDLE_WAKE if upcoming is None else upcoming - self.clock()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=min(wait, IDLE_WAKE))

    async def deliver_due(self) -> int:
        """Attempt every notification that is due now; how many were attempted."""
        due = await asyncio.to_thread(self.history.due, self.clock())
        await asyncio.gather(*(self._attempt(entry) for entry in due))
        return len(due)

    async def _attempt(self, entry: Waiting) -> None:
        async with self._slots:
            key = (entry.receiver, entry.integration)
            notifier = self.notifiers.get(key)
            error: str | None = None
            retry_at: float | None = None
            if notifier is None:
                outcome, error = (
                    "failed",
                    f"receiver {entry.receiver} ({entry.integration}) is no longer configured",
                )
            else:
                try:
                    await notifier.send(notification_from_json(entry.payload))
                    outcome = "sent"
                except PermanentError as exc:
                    outcome, error = "failed", str(exc)
                except RetryableError as exc:
                    outcome, error, retry_at = self._retry(entry, str(exc), exc.retry_after)
                except Exception as exc:  # a notifier bug: retried, and logged with its trace
                    log.exception("notifier %s/%s raised", entry.receiver, entry.integration)
                    outcome, error, retry_at = self._retry(entry, repr(exc), None)
            now = self.clock()
            await asyncio.to_thread(self.history.finish, entry, outcome, now, error, retry_at)
            self._count(key, outcome, error, now)

    def _retry(
        self, entry: Waiting, error: str, after: float | None
    ) -> tuple[str, str, float | None]:
        now = self.clock()
        wait = max(after or 0.0, self.policy.delay(entry.attempts))
        if now + wait - entry.created_at > self.config.max_elapsed_time:
            return "failed", f"{error} (gave up after {now - entry.created_at:.0f}s)", None
        return "retried", error, now + wait

    def _count(self, key: tuple[str, str], outcome: str, error: str | None, now: float) -> None:
        receiver, integration = key
        self.counter.labels(receiver, integration, outcome).inc()
        status = self.status.setdefault(key, IntegrationStatus())
        if outcome == "sent":
            status.sent += 1
            status.last_success_at = now
            return
        if outcome == "failed":
            status.failed += 1
        else:
            status.retried += 1
        status.last_error, status.last_error_at = error, now
        level = logging.ERROR if outcome == "failed" else logging.WARNING
        log.log(level, "notification to %s (%s) %s: %s", receiver, integration, outcome, error)
