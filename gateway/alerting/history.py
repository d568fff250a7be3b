"""Alert state and history in the embedded store: alerts, their timelines, groups, silences
and the notification outbox (tables in :mod:`gateway.store.alerts_schema`).

Calls block: the alerting loop makes them from a worker thread, once per evaluation.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.alerting.dispatch import Group
from gateway.alerting.engine import Alert
from gateway.alerting.matchers import Matcher
from gateway.alerting.silences import Silence
from gateway.store.sqlite import SqliteStore

_ALERT_COLUMNS = (
    "id",
    "rule",
    "fingerprint",
    "service",
    "severity",
    "state",
    "labels",
    "annotations",
    "value",
    "started_at",
    "last_held_at",
    "fired_at",
    "resolved_at",
    "acknowledged_by",
    "acknowledged_at",
    "ack_comment",
    "silenced_by",
)
_JSON_COLUMNS = ("labels", "annotations", "silenced_by")


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of an alert's timeline."""

    alert_id: str
    at: float
    kind: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A notification accepted for sending to one integration of one receiver."""

    receiver: str
    integration: str
    group_key: str
    payload: str
    alert_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Waiting:
    """An outbox row that is due (``created_at`` starts its retry budget)."""

    id: int
    receiver: str
    integration: str
    payload: str
    alert_ids: tuple[str, ...]
    created_at: float
    attempts: int


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """Filters of ``GET /alerts/history`` (all optional) and the page."""

    service: str | None = None
    rule: str | None = None
    severity: str | None = None
    state: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 100
    offset: int = 0


def _alert_row(alert: Alert) -> tuple[Any, ...]:
    values = {**alert.as_row(), "service": alert.service}
    return tuple(json.dumps(values[c]) if c in _JSON_COLUMNS else values[c] for c in _ALERT_COLUMNS)


def _alert(row: Sequence[Any]) -> Alert:
    values = dict(zip(_ALERT_COLUMNS, row, strict=True))
    for column in _JSON_COLUMNS:
        values[column] = json.loads(values[column])
    del values["service"]
    return Alert(**values)


_SELECT = f"SELECT {', '.join(_ALERT_COLUMNS)} FROM alerts"


class AlertHistory:
    """Reads and writes the alerting tables of one store."""

    def __init__(self, store: SqliteStore | None) -> None:
        self._store = store

    @property
    def store(self) -> SqliteStore:
        """The store (set before the alerting service starts)."""
        if self._store is None:
            raise RuntimeError("the alert history has no store yet")
        return self._store

    @store.setter
    def store(self, store: SqliteStore | None) -> None:
        self._store = store

    @property
    def has_store(self) -> bool:
        """Whether a store is attached (not before start, not after stop)."""
        return self._store is not None

    # -- loading on start ----------------------------------------------------------------

    def load_open(self) -> list[Alert]:
        """Alerts not resolved (pending, firing, acknowledged)."""
        query = f"{_SELECT} WHERE state != 'resolved'"
        return self.store.read(lambda db: [_alert(r) for r in db.execute(query)])

    def load_alerts(self, ids: Iterable[str]) -> list[Alert]:
        """The alerts with these ids."""
        wanted = list(ids)
        if not wanted:
            return []
        query = f"{_SELECT} WHERE id IN ({','.join('?' * len(wanted))})"
        return self.store.read(lambda db: [_alert(r) for r in db.execute(query, wanted)])

    def load_groups(self) -> list[Group]:
        """Every saved aggregation group."""
        rows = self.store.read(lambda db: db.execute("SELECT state FROM alert_groups").fetchall())
        return [Group.from_json(state) for (state,) in rows]

    def load_silences(self) -> list[Silence]:
        """Every saved silence."""
        rows = self.store.read(
            lambda db: db.execute(
                "SELECT id, matchers, starts_at, ends_at, created_by, comment, created_at "
                "FROM silences"
            ).fetchall()
        )
        return [
            Silence(
                id_,
                tuple(
                    Matcher(m["name"], m["value"], m["isRegex"], m["isEqual"])
                    for m in json.loads(matchers)
                ),
                *rest,
            )
            for id_, matchers, *rest in rows
        ]

    # -- one evaluation ------------------------------------------------------------------

    def save(
        self,
        alerts: Iterable[Alert] = (),
        events: Iterable[Event] = (),
        groups: Iterable[Group] = (),
        removed_groups: Iterable[str] = (),
        outbox: Iterable[OutboxEntry] = (),
        now: float = 0.0,
    ) -> None:
        """Write what one evaluation changed, in one transaction."""
        alert_rows = [_alert_row(a) for a in alerts]
        event_rows = [(e.alert_id, e.at, e.kind, json.dumps(e.detail)) for e in events]
        group_rows = [(g.key, g.to_json()) for g in groups]
        removed = [(key,) for key in removed_groups]
        outbox_rows = [
            (o.receiver, o.integration, o.group_key, o.payload, json.dumps(o.alert_ids), now, now)
            for o in outbox
        ]
        if not (alert_rows or event_rows or group_rows or removed or outbox_rows):
            return

        def write(db: sqlite3.Connection) -> None:
            marks = ",".join("?" * len(_ALERT_COLUMNS))
            db.executemany(
                f"INSERT OR REPLACE INTO alerts ({', '.join(_ALERT_COLUMNS)}) VALUES ({marks})",
                alert_rows,
            )
            db.executemany("INSERT INTO alert_events VALUES (?, ?, ?, ?)", event_rows)
            db.executemany("INSERT OR REPLACE INTO alert_groups VALUES (?, ?)", group_rows)
            db.executemany("DELETE FROM alert_groups WHERE key = ?", removed)
            db.executemany(
                "INSERT INTO notification_outbox (receiver, integration, group_key, payload, "
                "alert_ids, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                outbox_rows,
            )

        self.store.transaction(write)

    def save_silence(self, silence: Silence) -> None:
        """Add or replace a silence."""
        matchers = json.dumps([m.as_json() for m in silence.matchers])
        row = (
            silence.id,
            matchers,
            silence.starts_at,
            silence.ends_at,
            silence.created_by,
            silence.comment,
            silence.created_at,
        )
        self.store.transaction(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO silences VALUES (?, ?, ?, ?, ?, ?, ?)", row
            )
        )

    # -- reading -------------------------------------------------------------------------

    def get(self, alert_id: str) -> tuple[Alert, list[Event]] | None:
        """An alert and its timeline, oldest first."""

        def read(db: sqlite3.Connection) -> tuple[Alert, list[Event]] | None:
            row = db.execute(f"{_SELECT} WHERE id = ?", (alert_id,)).fetchone()
            if row is None:
                return None
            events = db.execute(
                "SELECT alert_id, at, kind, detail FROM alert_events WHERE alert_id = ? "
                "ORDER BY at, rowid",
                (alert_id,),
            ).fetchall()
            return _alert(row), [Event(a, at, k, json.loads(d)) for a, at, k, d in events]

        return self.store.read(read)

    def query(self, q: HistoryQuery) -> tuple[list[Alert], int]:
        """Alerts matching ``q``, newest first, and how many match in all."""
        where: list[str] = []
        args: list[Any] = []
        for column, value in (
            ("service", q.service),
            ("rule", q.rule),
            ("severity", q.severity),
            ("state", q.state),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if q.since is not None:
            where.append("COALESCE(resolved_at, 1e18) >= ?")
            args.append(q.since)
        if q.until is not None:
            where.append("started_at <= ?")
            args.append(q.until)
        clause = f" WHERE {' AND '.join(where)}" if where else ""

        def read(db: sqlite3.Connection) -> tuple[list[Alert], int]:
            total = db.execute(f"SELECT COUNT(*) FROM alerts{clause}", args).fetchone()[0]
            rows = db.execute(
                f"{_SELECT}{clause} ORDER BY started_at DESC, id LIMIT ? OFFSET ?",
                [*args, q.limit, q.offset],
            ).fetchall()
            return [_alert(r) for r in rows], int(total)

        return self.store.read(read)

    # -- the outbox ----------------------------------------------------------------------

    _HEADS = (
        "SELECT MIN(id) FROM notification_outbox WHERE delivered_at IS NULL "
        "AND failed_at IS NULL GROUP BY receiver, integration, group_key"
    )

    def due(self, now: float, limit: int = 100) -> list[Waiting]:
        """The oldest waiting notification of each (receiver, integration, group) that is due:
        a group's notifications go out in order."""
        query = (
            "SELECT id, receiver, integration, payload, alert_ids, created_at, attempts "
            f"FROM notification_outbox WHERE id IN ({self._HEADS}) AND next_attempt_at <= ? "
            "ORDER BY id LIMIT ?"
        )
        rows = self.store.read(lambda db: db.execute(query, (now, limit)).fetchall())
        return [Waiting(i, r, n, p, tuple(json.loads(a)), c, t) for i, r, n, p, a, c, t in rows]

    def next_attempt(self) -> float | None:
        """When the next notification that may go out is due (None: nothing waits). Only the
        oldest of each group counts: the ones behind it wait for it."""
        query = f"SELECT MIN(next_attempt_at) FROM notification_outbox WHERE id IN ({self._HEADS})"
        value = self.store.read(lambda db: db.execute(query).fetchone()[0])
        return None if value is None else float(value)

    def finish(
        self,
        entry: Waiting,
        outcome: str,
        now: float,
        error: str | None,
        retry_at: float | None = None,
    ) -> None:
        """Record a delivery attempt: ``sent``, ``failed`` (for good) or ``retried`` (again at
        ``retry_at``); the alerts' timelines get the outcome."""
        detail = json.dumps(
            {
                "receiver": entry.receiver,
                "integration": entry.integration,
                "outcome": outcome,
                "error": error,
            }
        )

        def write(db: sqlite3.Connection) -> None:
            if outcome == "sent":
                db.execute(
                    "UPDATE notification_outbox SET delivered_at = ?, attempts = attempts "
                    "+ 1, last_error = NULL WHERE id = ?",
                    (now, entry.id),
                )
            elif outcome == "failed":
                db.execute(
                    "UPDATE notification_outbox SET failed_at = ?, attempts = attempts + 1, "
                    "last_error = ? WHERE id = ?",
                    (now, error, entry.id),
                )
            else:
                db.execute(
                    "UPDATE notification_outbox SET next_attempt_at = ?, attempts = "
                    "attempts + 1, last_error = ? WHERE id = ?",
                    (retry_at, error, entry.id),
                )
            if outcome != "retried" or entry.attempts == 0:
                kind = "notification_" + outcome
                db.executemany(
                    "INSERT INTO alert_events VALUES (?, ?, ?, ?)",
                    [(a, now, kind, detail) for a in entry.alert_ids],
                )

        self.store.transaction(write)

    def waiting_counts(self) -> dict[tuple[str, str], int]:
        """Notifications waiting, by (receiver, integration)."""
        query = (
            "SELECT receiver, integration, COUNT(*) FROM notification_outbox "
            "WHERE delivered_at IS NULL AND failed_at IS NULL GROUP BY receiver, integration"
        )
        rows = self.store.read(lambda db: db.execute(query).fetchall())
        return {(r, i): int(n) for r, i, n in rows}

    # -- retention -----------------------------------------------------------------------

    def forget_before(self, when: float) -> int:
        """Delete resolved alerts (and their events), finished notifications and ended
        silences older than ``when``; how many alerts went."""

        def write(db: sqlite3.Connection) -> int:
            old = "SELECT id FROM alerts WHERE state = 'resolved' AND resolved_at < ?"
            db.execute(f"DELETE FROM alert_events WHERE alert_id IN ({old})", (when,))
            gone = db.execute(
                "DELETE FROM alerts WHERE state = 'resolved' AND resolved_at < ?", (when,)
            ).rowcount
            db.execute(
                "DELETE FROM notification_outbox WHERE COALESCE(delivered_at, failed_at) < ?",
                (when,),
            )
            db.execute("DELETE FROM silences WHERE ends_at < ?", (when,))
            return int(gone)

        return self.store.transaction(write)
