"""Alert state and history in SQLite: open alerts, groups, silences, timelines, the history
query, the notification outbox, retention, and a restart from the same file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.alerting.alerts import AlertState
from gateway.alerting.dispatch import Group
from gateway.alerting.engine import Alert
from gateway.alerting.history import AlertHistory, Event, HistoryQuery, OutboxEntry, Waiting
from gateway.alerting.matchers import Matcher
from gateway.alerting.silences import Silence
from gateway.store.sqlite import MEMORY, SqliteStore

T0 = 1_800_000_000.0


@pytest.fixture
def history() -> Iterator[AlertHistory]:
    store = SqliteStore(MEMORY)
    yield AlertHistory(store)
    store.close()


def alert(
    alert_id: str,
    state: AlertState = "firing",
    *,
    rule: str = "HighErrorRate",
    service: str | None = "orders",
    severity: str = "critical",
    started_at: float = T0,
    resolved_at: float | None = None,
    **more: Any,
) -> Alert:
    if state == "resolved" and resolved_at is None:
        resolved_at = started_at + 60
    labels = {"alertname": rule, "severity": severity}
    if service is not None:
        labels["service"] = service
    return Alert(
        id=alert_id,
        rule=rule,
        fingerprint=f"fp-{alert_id}",
        labels=labels,
        annotations={"summary": f"{alert_id}: 7.3% errors", "runbook_url": "docs/x.md#y"},
        severity=severity,
        state=state,
        value=0.073,
        started_at=started_at,
        last_held_at=started_at + 5,
        fired_at=None if state == "pending" else started_at + 1,
        resolved_at=resolved_at,
        **more,
    )


def group(key: str = '0:{alertname="A"}', **more: Any) -> Group:
    return Group(key=key, route="0", labels={"alertname": "A"}, created_at=T0, **more)


def silence(silence_id: str = "s1", ends_at: float = T0 + 3600) -> Silence:
    return Silence(
        id=silence_id,
        matchers=(Matcher("service", "orders"), Matcher("severity", "crit.*", True, False)),
        starts_at=T0,
        ends_at=ends_at,
        created_by="alice",
        comment="deploying",
        created_at=T0 - 1,
    )


def test_without_a_store() -> None:
    history = AlertHistory(None)
    assert not history.has_store
    with pytest.raises(RuntimeError):
        history.load_open()
    store = SqliteStore(MEMORY)
    history.store = store
    assert history.has_store and history.load_open() == []
    store.close()


def test_open_alerts_round_trip(history: AlertHistory) -> None:
    pending = alert("p1", "pending")
    firing = alert("f1", silenced_by=["s1", "s2"])
    acked = alert(
        "a1",
        "acknowledged",
        service=None,
        acknowledged_by="bob",
        acknowledged_at=T0 + 30,
        ack_comment="on it",
    )
    resolved = alert("r1", "resolved")
    history.save(alerts=[pending, firing, acked, resolved], now=T0)
    loaded = {a.id: a for a in history.load_open()}
    assert loaded == {"p1": pending, "f1": firing, "a1": acked}
    assert loaded["a1"].service is None and loaded["f1"].silenced_by == ["s1", "s2"]
    by_id = sorted(history.load_alerts(["r1", "f1", "nope"]), key=lambda a: a.id)
    assert by_id == [firing, resolved]
    assert history.load_alerts([]) == []
    # Saving again replaces the row.
    firing.state, firing.resolved_at = "resolved", T0 + 99
    history.save(alerts=[firing], now=T0 + 99)
    assert {a.id for a in history.load_open()} == {"p1", "a1"}
    assert history.load_alerts(["f1"])[0].resolved_at == T0 + 99


def test_groups_round_trip_and_removal(history: AlertHistory) -> None:
    one = group(members={"f1", "f2"}, notified_firing={"f1"}, last_notified_at=T0 + 10,
                last_flush_at=T0 + 10, escalated={"f1": 1})  # fmt: skip
    two = group('0.1:{service="x"}', members={"f3"})
    history.save(groups=[one, two], now=T0)
    assert sorted(history.load_groups(), key=lambda g: g.key) == [two, one]
    one.members.add("f4")
    history.save(groups=[one], removed_groups=[two.key], now=T0 + 1)
    assert history.load_groups() == [one]


def test_silences_round_trip(history: AlertHistory) -> None:
    first, second = silence("s1"), silence("s2", ends_at=T0 + 60)
    history.save_silence(first)
    history.save_silence(second)
    assert sorted(history.load_silences(), key=lambda s: s.id) == [first, second]
    expired = Silence(first.id, first.matchers, first.starts_at, T0 + 10, first.created_by,
                      first.comment, first.created_at)  # fmt: skip
    history.save_silence(expired)  # replaces
    assert sorted(history.load_silences(), key=lambda s: s.id) == [expired, second]


def test_timeline_is_ordered_by_time_then_insertion(history: AlertHistory) -> None:
    a = alert("f1")
    history.save(
        alerts=[a],
        events=[
            Event("f1", T0 + 1, "firing", {"from": "pending"}),
            Event("f1", T0, "pending", {"from": None}),
            Event("other", T0, "pending", {}),
        ],
        now=T0 + 1,
    )
    history.save(events=[Event("f1", T0 + 1, "silenced", {"silences": ["s1"]})], now=T0 + 1)
    history.save(events=[Event("f1", T0 + 0.5, "acknowledged", {"by": "bob"})], now=T0 + 2)
    found = history.get("f1")
    assert found is not None
    got, events = found
    assert got == a
    assert [(e.at - T0, e.kind) for e in events] == [
        (0.0, "pending"),
        (0.5, "acknowledged"),
        (1.0, "firing"),
        (1.0, "silenced"),  # same time: in the order written
    ]
    assert events[0].detail == {"from": None} and events[3].detail == {"silences": ["s1"]}
    assert history.get("nope") is None


# -- the history query -----------------------------------------------------------------------

HISTORY: list[tuple[str, AlertState, str, str | None, str, float, float | None]] = [
    # id, state, rule, service, severity, started, resolved
    ("h1", "resolved", "HighErrorRate", "orders", "critical", T0, T0 + 100),
    ("h2", "resolved", "HighErrorRate", "web", "critical", T0 + 200, T0 + 300),
    ("h3", "firing", "HighErrorRate", "orders", "critical", T0 + 400, None),
    ("h4", "acknowledged", "ServiceStale", "orders", "warning", T0 + 500, None),
    ("h5", "resolved", "ServiceStale", "web", "warning", T0 + 600, T0 + 700),
    ("h6", "pending", "HighCpu", None, "warning", T0 + 800, None),
]


@pytest.fixture
def filled(history: AlertHistory) -> AlertHistory:
    alerts = [
        alert(i, state, rule=rule, service=svc, severity=sev, started_at=start, resolved_at=end)
        for i, state, rule, svc, sev, start, end in HISTORY
    ]
    history.save(alerts=alerts, now=T0 + 900)
    return history


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        (HistoryQuery(), ["h6", "h5", "h4", "h3", "h2", "h1"]),  # newest first
        (HistoryQuery(service="orders"), ["h4", "h3", "h1"]),
        (HistoryQuery(rule="ServiceStale"), ["h5", "h4"]),
        (HistoryQuery(severity="critical"), ["h3", "h2", "h1"]),
        (HistoryQuery(state="resolved"), ["h5", "h2", "h1"]),
        (HistoryQuery(state="acknowledged"), ["h4"]),
        (HistoryQuery(service="web", rule="HighErrorRate"), ["h2"]),
        # since: still open, or resolved at or after it.
        (HistoryQuery(since=T0 + 300), ["h6", "h5", "h4", "h3", "h2"]),
        (HistoryQuery(since=T0 + 301), ["h6", "h5", "h4", "h3"]),
        # until: started at or before it.
        (HistoryQuery(until=T0 + 400), ["h3", "h2", "h1"]),
        (HistoryQuery(since=T0 + 150, until=T0 + 550), ["h4", "h3", "h2"]),
        (HistoryQuery(service="nobody"), []),
    ],
)
def test_history_query_filters(filled: AlertHistory, query: HistoryQuery, ids: list[str]) -> None:
    found, total = filled.query(query)
    assert [a.id for a in found] == ids
    assert total == len(ids)


def test_history_query_pages(filled: AlertHistory) -> None:
    pages = [filled.query(HistoryQuery(limit=4, offset=offset)) for offset in (0, 4, 8)]
    assert [([a.id for a in found], total) for found, total in pages] == [
        (["h6", "h5", "h4", "h3"], 6),
        (["h2", "h1"], 6),
        ([], 6),
    ]
    found, total = filled.query(HistoryQuery(severity="warning", limit=2, offset=1))
    assert ([a.id for a in found], total) == (["h5", "h4"], 3)


# -- the outbox ------------------------------------------------------------------------------


def entry(receiver: str, integration: str, key: str, payload: str, *ids: str) -> OutboxEntry:
    return OutboxEntry(receiver, integration, key, payload, ids)


def outbox_row(history: AlertHistory, row_id: int) -> tuple[Any, ...]:
    return history.store.read(
        lambda db: db.execute(
            "SELECT attempts, next_attempt_at, delivered_at, failed_at, last_error "
            "FROM notification_outbox WHERE id = ?",
            (row_id,),
        ).fetchone()
    )


def kinds(history: AlertHistory, alert_id: str) -> list[str]:
    found = history.get(alert_id)
    assert found is not None
    return [e.kind for e in found[1]]


@pytest.fixture
def queued(history: AlertHistory) -> AlertHistory:
    history.save(alerts=[alert("a1"), alert("a2")], now=T0)
    history.save(
        outbox=[
            entry("team", "webhook", "g1", "first", "a1"),
            entry("team", "webhook", "g1", "second", "a1", "a2"),
            entry("team", "email", "g1", "mail", "a1"),
            entry("other", "webhook", "g2", "other", "a2"),
        ],
        now=T0,
    )
    history.save(outbox=[entry("team", "webhook", "g3", "later", "a2")], now=T0 + 10)
    return history


def payloads(waiting: list[Waiting]) -> list[str]:
    return [w.payload for w in waiting]


def test_due_returns_the_oldest_waiting_entry_of_each_group(queued: AlertHistory) -> None:
    due = queued.due(T0)
    assert payloads(due) == ["first", "mail", "other"]  # g3 is due at T0 + 10
    first = due[0]
    assert (first.receiver, first.integration, first.alert_ids) == ("team", "webhook", ("a1",))
    assert (first.created_at, first.attempts) == (T0, 0)
    assert payloads(queued.due(T0 + 10)) == ["first", "mail", "other", "later"]
    assert payloads(queued.due(T0 + 10, limit=2)) == ["first", "mail"]
    assert queued.next_attempt() == T0
    assert queued.waiting_counts() == {("team", "webhook"): 3, ("team", "email"): 1,
                                       ("other", "webhook"): 1}  # fmt: skip


def test_finish_sent_moves_the_group_on(queued: AlertHistory) -> None:
    first = queued.due(T0)[0]
    queued.finish(first, "sent", T0 + 1, None)
    attempts, _, delivered, failed, error = outbox_row(queued, first.id)
    assert (attempts, delivered, failed, error) == (1, T0 + 1, None, None)
    assert payloads(queued.due(T0 + 1)) == ["second", "mail", "other"]
    assert kinds(queued, "a1") == ["notification_sent"]
    found = queued.get("a1")
    assert found is not None
    assert found[1][0].detail == {"receiver": "team", "integration": "webhook",
                                  "outcome": "sent", "error": None}  # fmt: skip


def test_finish_retried_holds_the_group_until_the_retry(queued: AlertHistory) -> None:
    first = queued.due(T0)[0]
    queued.finish(first, "retried", T0 + 1, "503 Service Unavailable", retry_at=T0 + 30)
    attempts, next_at, delivered, failed, error = outbox_row(queued, first.id)
    assert (attempts, next_at, delivered, failed, error) == (
        1, T0 + 30, None, None, "503 Service Unavailable"
    )  # fmt: skip
    # The group's next notification waits behind the one being retried.
    assert payloads(queued.due(T0 + 29)) == ["mail", "other", "later"]
    again = queued.due(T0 + 30)
    assert payloads(again) == ["first", "mail", "other", "later"]
    assert again[0].attempts == 1
    assert queued.next_attempt() == T0  # mail and other are still due
    queued.finish(again[0], "retried", T0 + 31, "503 again", retry_at=T0 + 90)
    # Only the first retry goes on the timeline, not every attempt.
    assert kinds(queued, "a1") == ["notification_retried"]
    queued.finish(queued.due(T0 + 90)[0], "sent", T0 + 91, None)
    assert kinds(queued, "a1") == ["notification_retried", "notification_sent"]
    assert outbox_row(queued, first.id)[:3] == (3, T0 + 90, T0 + 91)


def test_finish_failed_gives_up_and_moves_on(queued: AlertHistory) -> None:
    first = queued.due(T0)[0]
    queued.finish(first, "failed", T0 + 2, "400 Bad Request")
    attempts, _, delivered, failed, error = outbox_row(queued, first.id)
    assert (attempts, delivered, failed, error) == (1, None, T0 + 2, "400 Bad Request")
    assert payloads(queued.due(T0 + 2)) == ["second", "mail", "other"]
    found = queued.get("a1")
    assert found is not None
    assert [(e.kind, e.detail["error"]) for e in found[1]] == [
        ("notification_failed", "400 Bad Request")
    ]
    second = queued.due(T0 + 2)[0]
    queued.finish(second, "sent", T0 + 3, None)  # both of its alerts get the event
    assert kinds(queued, "a2") == ["notification_sent"]
    assert queued.waiting_counts()[("team", "webhook")] == 1


def test_nothing_waiting(history: AlertHistory) -> None:
    assert history.due(T0) == [] and history.next_attempt() is None
    assert history.waiting_counts() == {}


# -- retention -------------------------------------------------------------------------------


def test_forget_before_drops_old_finished_things_only(history: AlertHistory) -> None:
    old = alert("old", "resolved", started_at=T0, resolved_at=T0 + 10)
    recent = alert("recent", "resolved", started_at=T0, resolved_at=T0 + 200)
    ancient_open = alert("open", "firing", started_at=T0 - 10_000)
    history.save(
        alerts=[old, recent, ancient_open],
        events=[Event(a.id, T0, "firing", {}) for a in (old, recent, ancient_open)],
        outbox=[
            entry("team", "webhook", "g1", "sent-early", "old"),
            entry("team", "webhook", "g2", "failed-early", "old"),
            entry("team", "webhook", "g3", "sent-late", "recent"),
            entry("team", "webhook", "g4", "waiting", "open"),
        ],
        now=T0,
    )
    due = {w.payload: w for w in history.due(T0)}
    history.finish(due["sent-early"], "sent", T0 + 20, None)
    history.finish(due["failed-early"], "failed", T0 + 30, "gone")
    history.finish(due["sent-late"], "sent", T0 + 150, None)
    history.save_silence(silence("ended", ends_at=T0 + 50))
    history.save_silence(silence("running", ends_at=T0 + 5000))

    assert history.forget_before(T0 + 100) == 1
    assert history.get("old") is None
    assert {a.id for a in history.query(HistoryQuery())[0]} == {"recent", "open"}
    assert kinds(history, "recent")[0] == "firing" and kinds(history, "open") == ["firing"]
    left = history.store.read(
        lambda db: sorted(p for (p,) in db.execute("SELECT payload FROM notification_outbox"))
    )
    assert left == ["sent-late", "waiting"]
    assert [s.id for s in history.load_silences()] == ["running"]
    assert history.forget_before(T0 + 100) == 0


# -- restart ---------------------------------------------------------------------------------


def test_a_store_reopened_from_its_file_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "data" / "otelgate.db"
    store = SqliteStore(path)
    history = AlertHistory(store)
    firing, resolved = alert("f1"), alert("r1", "resolved")
    saved_group = group(members={"f1", "r1"}, notified_firing={"f1", "r1"},
                        last_notified_at=T0 + 10, last_flush_at=T0 + 10)  # fmt: skip
    history.save(
        alerts=[firing, resolved],
        events=[Event("f1", T0, "firing", {"from": None})],
        groups=[saved_group],
        outbox=[entry("team", "webhook", saved_group.key, "{}", "f1")],
        now=T0,
    )
    history.save_silence(silence())
    store.close()

    reopened = SqliteStore(path)
    again = AlertHistory(reopened)
    assert again.load_open() == [firing]
    assert again.load_alerts(["r1"]) == [resolved]
    assert again.load_groups() == [saved_group]
    assert again.load_silences() == [silence()]
    assert payloads(again.due(T0)) == ["{}"]
    found = again.get("f1")
    assert found is not None and [e.kind for e in found[1]] == ["firing"]
    reopened.close()
