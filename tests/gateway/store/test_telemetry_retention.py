"""Retention of the telemetry store: by age, and by size (the file never passes the cap, the
WAL stays within its limit, the newest rows survive, every deleted or dropped row counted)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.store.sqlite import SqliteStore
from gateway.store.telemetry_queries import TelemetryReader
from gateway.store.telemetry_records import LogQuery, TraceQuery
from gateway.store.telemetry_writer import TelemetryWriter
from tests.gateway.store.telemetry_data import (
    BASE_NS,
    MS,
    SpanSpec,
    attr,
    log_fact,
    logs_batch,
    order_number,
    spans_batch,
    trace_hex,
)

MIB = 1 << 20
SECOND_NS = 1_000_000_000


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def rows(path: Path, table: str) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def index_is_sound(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO telemetry_logs_fts (telemetry_logs_fts) VALUES ('integrity-check')")
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# --- by age -------------------------------------------------------------------------------


def test_rows_older_than_the_retention_are_deleted(tmp_path: Path):
    path = tmp_path / "otelgate.db"
    clock = Clock(BASE_NS / 1e9)
    writer = TelemetryWriter(path, retention=3600, max_size_bytes=64 * MIB,
                             search_attributes=[], clock=clock)  # fmt: skip
    # 120 batches of 100 logs and one trace, 30 s apart, the first 100 minutes before "now"
    facts = [log_fact(i, 12_000) for i in range(12_000)]
    for k in range(120):
        start_ms = -100 * 60_000 + k * 30_000
        batch = logs_batch(facts[k * 100 : (k + 1) * 100])
        for group in batch.request.resource_logs:  # type: ignore[union-attr]
            for record in group.scope_logs[0].log_records:
                record.time_unix_nano = BASE_NS + start_ms * MS
        writer.write(batch)
        writer.write(spans_batch(k + 1, [SpanSpec(1, None, "checkout", f"op-{k}", start_ms, 0)]))
    cutoff = BASE_NS - 3600 * SECOND_NS  # batches 0-79 are older

    result = writer.enforce_retention()
    assert (result.logs_by_age, result.spans_by_age) == (8000, 80)
    assert (result.logs_by_size, result.spans_by_size) == (0, 0)
    assert rows(path, "telemetry_logs") == 4000
    assert rows(path, "telemetry_logs_fts") == 4000  # the trigger removed their text too
    assert rows(path, "telemetry_spans") == 40
    reader = TelemetryReader(path)
    times = [r.time_unix_nano for r in reader.search_logs(LogQuery(limit=1000)).records]
    assert min(times) >= cutoff
    assert reader.trace(trace_hex(80)) == []
    assert [s.name for s in reader.trace(trace_hex(81))] == ["op-80"]
    assert writer.enforce_retention().logs_by_age == 0  # nothing left to do: cheap

    # Everything ages out; then the sources nobody refers to go too.
    clock.now += 2 * 3600 + 1
    result = writer.enforce_retention()
    assert (result.logs_by_age, result.spans_by_age, result.sources) == (4000, 40, 5)
    assert rows(path, "telemetry_sources") == 0
    assert writer.counts.deleted.logs_by_age == 12_000
    index_is_sound(path)
    reader.close()
    writer.close()


# --- by size ------------------------------------------------------------------------------


def test_the_file_never_passes_the_cap(tmp_path: Path):
    path = tmp_path / "otelgate.db"
    wal = tmp_path / "otelgate.db-wal"
    cap = 2 * MIB
    store = SqliteStore(path)  # other tables of the file must survive
    store.add_slo_buckets({("slo", 1): (1, 2)})
    writer = TelemetryWriter(
        path, retention=7 * 86400, max_size_bytes=cap, search_attributes=["http.route"],
        clock=lambda: BASE_NS / 1e9,
    )  # fmt: skip
    n = 40_000
    facts = [log_fact(i, n) for i in range(n)]
    received = logs = spans = 0
    largest_file = largest_wal = 0
    for k in range(0, n, 200):
        batch = logs_batch(facts[k : k + 200])
        received += batch.request.ByteSize()
        logs += writer.write(batch)
        trace = k // 200 + 1
        specs = [SpanSpec(s + 1, s or None, "checkout", f"op-{s}", s, s + 10) for s in range(200)]
        batch = spans_batch(trace, specs)
        for span in batch.request.resource_spans[0].scope_spans[0].spans:  # type: ignore[union-attr]
            span.attributes.append(attr("db.statement", f"SELECT {k} FROM orders " * 12))
        received += batch.request.ByteSize()
        spans += writer.write(batch)
        if k % 4000 == 0:
            writer.enforce_retention()
        largest_file = max(largest_file, path.stat().st_size)
        largest_wal = max(largest_wal, wal.stat().st_size if wal.exists() else 0)
        assert largest_file <= cap
    assert received > 20 * MIB  # ten times the cap went in
    assert largest_file <= cap
    assert largest_wal <= writer.wal_limit_bytes
    assert writer.size_bytes() <= cap * 0.9

    counts = writer.counts
    assert (counts.logs_written, counts.spans_written) == (logs, spans) == (n, n)
    stored_logs = rows(path, "telemetry_logs")
    stored_spans = rows(path, "telemetry_spans")
    assert stored_logs + counts.deleted.logs_by_size + counts.logs_dropped == n
    assert stored_spans + counts.deleted.spans_by_size + counts.spans_dropped == n
    assert counts.deleted.logs_by_size > 0.8 * n and counts.deleted.spans_by_size > 0.8 * n

    # The newest rows survived: the last batch of logs and the last trace, whole.
    reader = TelemetryReader(path)
    kept: set[int] = set()
    cursor = None
    while True:
        page = reader.search_logs(LogQuery(limit=1000, cursor=cursor))
        kept.update(order_number(r.body) for r in page.records)
        if (cursor := page.next_cursor) is None:
            break
    assert len(kept) == stored_logs
    assert kept >= set(range(n - 200, n))
    assert min(kept) > n // 2  # the oldest went first
    assert len(reader.trace(trace_hex(n // 200))) == 200
    assert reader.traces(TraceQuery(limit=1))[0].trace_id == trace_hex(n // 200)
    reader.close()
    writer.close()
    assert path.stat().st_size <= cap
    assert store.load_slo_buckets(["slo"], 0) == {"slo": {1: (1.0, 2.0)}}
    store.close()
    index_is_sound(path)


def test_a_batch_larger_than_the_room_is_partly_written(tmp_path: Path):
    path = tmp_path / "otelgate.db"
    cap = MIB
    writer = TelemetryWriter(path, retention=3600, max_size_bytes=cap,
                             search_attributes=[], clock=lambda: BASE_NS / 1e9)  # fmt: skip
    facts = [log_fact(i, 6000) for i in range(6000)]
    written = writer.write(logs_batch(facts))  # some 3 MiB of rows in one batch
    assert 0 < written < 6000
    assert writer.counts.logs_dropped == 6000 - written
    assert rows(path, "telemetry_logs") + writer.counts.deleted.logs_by_size == written
    assert path.stat().st_size <= cap
    assert writer.write(logs_batch(facts[:100])) == 100  # and it goes on
    writer.close()
    index_is_sound(path)


def test_a_lowered_cap_shrinks_the_file_when_opened(tmp_path: Path):
    path = tmp_path / "otelgate.db"
    writer = TelemetryWriter(path, retention=3600, max_size_bytes=16 * MIB,
                             search_attributes=[], clock=lambda: BASE_NS / 1e9)  # fmt: skip
    facts = [log_fact(i, 20_000) for i in range(20_000)]
    for k in range(0, 20_000, 1000):
        writer.write(logs_batch(facts[k : k + 1000]))
    writer.close()
    assert path.stat().st_size > 4 * MIB

    writer = TelemetryWriter(path, retention=3600, max_size_bytes=2 * MIB,
                             search_attributes=[], clock=lambda: BASE_NS / 1e9)  # fmt: skip
    assert path.stat().st_size <= 2 * MIB
    assert writer.counts.deleted.logs_by_size > 10_000
    assert writer.write(logs_batch(facts[:100])) == 100
    writer.close()
    assert path.stat().st_size <= 2 * MIB


@pytest.mark.parametrize("cap", [0, 1000, MIB - 1])
def test_a_cap_too_small_is_refused(tmp_path: Path, cap: int):
    with pytest.raises(ValueError, match="max_size_bytes"):
        TelemetryWriter(tmp_path / "x.db", retention=1, max_size_bytes=cap, search_attributes=[])


def test_records_are_deleted_by_record_time_not_arrival(tmp_path: Path):
    path = tmp_path / "otelgate.db"
    writer = TelemetryWriter(path, retention=60, max_size_bytes=8 * MIB,
                             search_attributes=[], clock=lambda: BASE_NS / 1e9)  # fmt: skip
    late = log_fact(0, 1)
    batch = logs_batch([late])
    record = batch.request.resource_logs[0].scope_logs[0].log_records[0]  # type: ignore[union-attr]
    record.time_unix_nano = BASE_NS - 120 * SECOND_NS  # arrives now, two minutes old
    writer.write(batch)
    writer.write(logs_batch([log_fact(1, 2)]))  # BASE_NS + a little: kept
    assert writer.enforce_retention().logs_by_age == 1
    assert rows(path, "telemetry_logs") == 1
    writer.close()
