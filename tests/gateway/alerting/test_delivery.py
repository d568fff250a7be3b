"""The outbox delivery: retries with backoff and Retry-After, permanent failures, the retry
budget, order within a group, and a notifier that disappeared in a reload."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter

from gateway.alerting.alerts import AlertSnapshot, Notification, notification_to_json
from gateway.alerting.config import DeliveryConfig
from gateway.alerting.delivery import Deliverer
from gateway.alerting.history import AlertHistory, OutboxEntry
from gateway.errors import PermanentError, RetryableError, ThrottledError
from gateway.store.sqlite import SqliteStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class FakeNotifier:
    """Fails with the queued errors, then succeeds; remembers what it delivered."""

    def __init__(self, receiver: str = "ops", kind: str = "webhook") -> None:
        self.receiver = receiver
        self.kind = kind
        self.errors: list[Exception] = []
        self.delivered: list[Notification] = []

    async def send(self, notification: Notification) -> None:
        if self.errors:
            raise self.errors.pop(0)
        self.delivered.append(notification)

    async def close(self) -> None:
        pass


@pytest.fixture
def history() -> Iterator[AlertHistory]:
    store = SqliteStore(":memory:")
    yield AlertHistory(store)
    store.close()


def notification(alert_id: str, status: str = "firing") -> Notification:
    snapshot = AlertSnapshot(
        id=alert_id, status=status, labels={"alertname": "X"}, annotations={},  # type: ignore[arg-type]
        starts_at=1.0, ends_at=None if status == "firing" else 2.0, generator_url="",
        fingerprint="f", value=1.0,
    )  # fmt: skip
    return Notification("ops", "g1", {"alertname": "X"}, (snapshot,), "http://gw")


def queue(history: AlertHistory, clock: Clock, *notes: Notification) -> None:
    entries = [OutboxEntry("ops", "webhook", n.group_key, notification_to_json(n),
                           tuple(a.id for a in n.alerts)) for n in notes]  # fmt: skip
    history.save(outbox=entries, now=clock.now)


def deliverer(
    history: AlertHistory, notifier: FakeNotifier, clock: Clock, **delivery: float
) -> Deliverer:
    counter = Counter(
        "n", "n", ["receiver", "integration", "outcome"], registry=CollectorRegistry()
    )
    config = DeliveryConfig(**{"initial_interval": 1.0, "max_interval": 8.0, **delivery})
    return Deliverer(history, {("ops", "webhook"): notifier}, config, counter, clock)


async def test_a_delivered_notification_is_sent_once(history: AlertHistory) -> None:
    clock, notifier = Clock(), FakeNotifier()
    queue(history, clock, notification("a1"))
    d = deliverer(history, notifier, clock)
    assert await d.deliver_due() == 1
    assert await d.deliver_due() == 0
    assert [n.alerts[0].id for n in notifier.delivered] == ["a1"]
    assert d.status[("ops", "webhook")].sent == 1
    assert history.next_attempt() is None


async def test_retryable_failures_back_off_and_honour_retry_after(history: AlertHistory) -> None:
    clock, notifier = Clock(), FakeNotifier()
    notifier.errors = [RetryableError("refused"), ThrottledError("slow down", retry_after=30)]
    queue(history, clock, notification("a1"))
    d = deliverer(history, notifier, clock)
    await d.deliver_due()
    first_retry = history.next_attempt()
    assert first_retry is not None and 1_000.5 <= first_retry <= 1_001.5  # 1 s +- jitter
    assert await d.deliver_due() == 0  # not due yet
    clock.now = first_retry
    await d.deliver_due()
    second = history.next_attempt()
    assert second is not None and second == pytest.approx(clock.now + 30)  # Retry-After wins
    clock.now = second
    await d.deliver_due()
    assert len(notifier.delivered) == 1
    status = d.status[("ops", "webhook")]
    assert (status.retried, status.sent, status.failed) == (2, 1, 0)
    events = history.store.read(
        lambda db: db.execute("SELECT kind FROM alert_events WHERE alert_id = 'a1'").fetchall()
    )
    assert [kind for (kind,) in events] == ["notification_retried", "notification_sent"]


async def test_a_permanent_error_fails_at_once(history: AlertHistory) -> None:
    clock, notifier = Clock(), FakeNotifier()
    notifier.errors = [PermanentError("400 bad payload")]
    queue(history, clock, notification("a1"))
    d = deliverer(history, notifier, clock)
    await d.deliver_due()
    assert history.next_attempt() is None and not notifier.delivered
    assert d.status[("ops", "webhook")].failed == 1
    assert d.status[("ops", "webhook")].last_error == "400 bad payload"


async def test_retries_stop_when_the_budget_is_spent(history: AlertHistory) -> None:
    clock, notifier = Clock(), FakeNotifier()
    notifier.errors = [RetryableError("down")] * 50
    queue(history, clock, notification("a1"))
    d = deliverer(history, notifier, clock, max_elapsed_time=20.0)
    for _ in range(50):
        upcoming = history.next_attempt()
        if upcoming is None:
            break
        clock.now = max(clock.now, upcoming)
        await d.deliver_due()
    assert history.next_attempt() is None
    status = d.status[("ops", "webhook")]
    assert status.failed == 1 and status.last_error is not None
    assert "gave up after" in status.last_error
    assert clock.now - 1_000.0 <= 20.0


async def test_a_groups_notifications_go_out_in_order(history: AlertHistory) -> None:
    clock, notifier = Clock(), FakeNotifier()
    notifier.errors = [RetryableError("down")]
    queue(history, clock, notification("a1"), notification("a1", "resolved"))
    d = deliverer(history, notifier, clock)
    await d.deliver_due()  # the firing one fails; the resolved one must wait behind it
    assert not notifier.delivered
    upcoming = history.next_attempt()
    assert upcoming is not None
    clock.now = upcoming
    await d.deliver_due()
    await d.deliver_due()
    assert [n.alerts[0].status for n in notifier.delivered] == ["firing", "resolved"]


async def test_a_receiver_removed_by_a_reload_fails_its_waiting_notifications(
    history: AlertHistory,
) -> None:
    clock, notifier = Clock(), FakeNotifier()
    queue(history, clock, notification("a1"))
    d = deliverer(history, notifier, clock)
    d.replace_notifiers({})
    await d.deliver_due()
    assert history.next_attempt() is None and not notifier.delivered
