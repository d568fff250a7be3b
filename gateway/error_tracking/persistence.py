"""Error groups and their samples in the embedded store (tables in
:mod:`gateway.store.errors_schema`). Calls block: run them in a worker thread."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from gateway.error_tracking.groups import ErrorGroup, FrameInfo, Sample
from gateway.store.sqlite import SqliteStore

_GROUP_COLUMNS = (
    "id", "type", "message", "culprit", "language", "basis", "frames", "first_seen",
    "last_seen", "count", "events", "services", "versions", "environments", "status",
    "status_changed_at", "status_changed_by", "resolved_versions", "regressed_at",
    "regressions", "samples_taken",
)  # fmt: skip
_JSON_COLUMNS = ("frames", "services", "versions", "environments", "resolved_versions")
_SAMPLE_COLUMNS = (
    "id", "group_id", "time", "trace_id", "span_id", "service", "version", "environment", "source",
    "message", "stacktrace", "attributes",
)  # fmt: skip


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


class ErrorStore:
    """Reads and writes error groups in one :class:`SqliteStore`."""

    def __init__(self, store: SqliteStore, samples_per_group: int) -> None:
        self.store = store
        self.samples_per_group = samples_per_group

    def save(self, groups: Sequence[ErrorGroup], samples: Sequence[Sample]) -> None:
        """Upsert ``groups`` and add ``samples`` (keeping the newest ``samples_per_group`` of
        each group), in one transaction."""
        self.write(rows_of(groups, samples))

    def write(self, rows: Rows) -> None:
        """Write rows made by :func:`rows_of` (on the event loop, where the groups change:
        this, in a worker thread, then reads no live group)."""
        group_rows, sample_rows = rows
        if not group_rows and not sample_rows:
            return
        touched = sorted({row[1] for row in sample_rows})  # group_id
        marks = ", ".join("?" * len(_GROUP_COLUMNS))
        updates = ", ".join(f"{c} = excluded.{c}" for c in _GROUP_COLUMNS[1:])
        sample_marks = ", ".join("?" * len(_SAMPLE_COLUMNS))

        def write(db: sqlite3.Connection) -> None:
            db.executemany(
                f"INSERT INTO error_groups ({', '.join(_GROUP_COLUMNS)}) VALUES ({marks}) "
                f"ON CONFLICT (id) DO UPDATE SET {updates}",
                group_rows,
            )
            db.executemany(
                f"INSERT OR REPLACE INTO error_samples ({', '.join(_SAMPLE_COLUMNS)}) "
                f"VALUES ({sample_marks})",
                sample_rows,
            )
            for group_id in touched:
                db.execute(
                    "DELETE FROM error_samples WHERE group_id = ? AND id NOT IN (SELECT id "
                    "FROM error_samples WHERE group_id = ? ORDER BY time DESC, id LIMIT ?)",
                    (group_id, group_id, self.samples_per_group),
                )

        self.store.transaction(write)

    def load(self, limit: int) -> list[ErrorGroup]:
        """The ``limit`` groups seen most recently."""
        columns = ", ".join(_GROUP_COLUMNS)
        rows = self.store.read(
            lambda db: db.execute(
                f"SELECT {columns} FROM error_groups ORDER BY last_seen DESC LIMIT ?", (limit,)
            ).fetchall()
        )
        return [_group(row) for row in rows]

    def samples(self, group_id: str) -> list[Sample]:
        """The kept samples of a group, newest first."""
        columns = ", ".join(_SAMPLE_COLUMNS)
        rows = self.store.read(
            lambda db: db.execute(
                f"SELECT {columns} FROM error_samples WHERE group_id = ? ORDER BY time DESC, id",
                (group_id,),
            ).fetchall()
        )
        return [_sample(row) for row in rows]

    def groups_in_trace(self, trace_id: str) -> list[str]:
        """The ids of the groups that have a sample in ``trace_id``."""
        rows = self.store.read(
            lambda db: db.execute(
                "SELECT DISTINCT group_id FROM error_samples WHERE trace_id = ?", (trace_id,)
            ).fetchall()
        )
        return sorted(str(r[0]) for r in rows)

    def delete(self, group_ids: Sequence[str]) -> None:
        """Remove groups and their samples (retention)."""
        if not group_ids:
            return

        def remove(db: sqlite3.Connection) -> None:
            rows = [(g,) for g in group_ids]
            db.executemany("DELETE FROM error_samples WHERE group_id = ?", rows)
            db.executemany("DELETE FROM error_groups WHERE id = ?", rows)

        self.store.transaction(remove)


Rows = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]


def rows_of(groups: Sequence[ErrorGroup], samples: Sequence[Sample]) -> Rows:
    """The database rows of ``groups`` and ``samples``: snapshots, safe to write elsewhere."""
    return [_group_row(g) for g in groups], [_sample_row(s) for s in samples]


def _group_row(group: ErrorGroup) -> tuple[Any, ...]:
    values = {c: getattr(group, c) for c in _GROUP_COLUMNS}  # not the in-memory extras
    values["frames"] = [dataclasses.asdict(frame) for frame in group.frames]
    return tuple(_dumps(values[c]) if c in _JSON_COLUMNS else values[c] for c in _GROUP_COLUMNS)


def _group(row: Sequence[Any]) -> ErrorGroup:
    values = dict(zip(_GROUP_COLUMNS, row, strict=True))
    for column in _JSON_COLUMNS:
        values[column] = json.loads(values[column])
    values["frames"] = [FrameInfo(**frame) for frame in values["frames"]]
    return ErrorGroup(**values)


def _sample_row(sample: Sample) -> tuple[Any, ...]:
    values = dataclasses.asdict(sample)
    values["attributes"] = _dumps(values["attributes"])
    return tuple(values[c] for c in _SAMPLE_COLUMNS)


def _sample(row: Sequence[Any]) -> Sample:
    values = dict(zip(_SAMPLE_COLUMNS, row, strict=True))
    values["attributes"] = json.loads(values["attributes"])
    return Sample(**values)
