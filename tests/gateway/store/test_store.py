"""The embedded SQLite store: SLO minute buckets, WAL mode, reopening, retention, paths."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from gateway.store import default_store_path, open_store
from gateway.store.config import StoreConfig
from gateway.store.sqlite import SCHEMA_VERSION, SqliteStore


def test_buckets_add_up_and_survive_reopening(tmp_path: Path):
    path = tmp_path / "nested" / "dir" / "otelgate.db"
    store = SqliteStore(path)  # creates the directories
    assert store.journal_mode == "wal"
    store.add_slo_buckets({("a", 10): (1, 2), ("a", 11): (3, 3), ("b", 10): (0, 5)})
    store.add_slo_buckets({("a", 10): (4, 4)})  # increments, not overwrites
    store.close()

    reopened = SqliteStore(path)
    assert reopened.load_slo_buckets(["a", "b", "c"], since_minute=0) == {
        "a": {10: (5.0, 6.0), 11: (3.0, 3.0)},
        "b": {10: (0.0, 5.0)},
        "c": {},
    }
    assert reopened.load_slo_buckets(["a"], since_minute=11) == {"a": {11: (3.0, 3.0)}}
    assert reopened.load_slo_buckets([], since_minute=0) == {}
    reopened.close()


def test_retention_deletes_older_buckets_of_every_slo(tmp_path: Path):
    store = SqliteStore(tmp_path / "db")
    store.add_slo_buckets({("a", 5): (1, 1), ("a", 6): (1, 1), ("old", 1): (1, 1)})
    assert store.delete_slo_buckets_before(6) == 2
    assert store.load_slo_buckets(["a", "old"], 0) == {"a": {6: (1.0, 1.0)}, "old": {}}
    store.close()


def test_writes_from_several_threads_are_serialised(tmp_path: Path):
    store = SqliteStore(tmp_path / "db")

    def write() -> None:
        for _ in range(50):
            store.add_slo_buckets({("a", 1): (1, 2)})

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert store.load_slo_buckets(["a"], 0) == {"a": {1: (200.0, 400.0)}}
    store.close()


def test_a_newer_schema_is_refused(tmp_path: Path):
    path = tmp_path / "db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(RuntimeError, match="newer than this otelgate"):
        SqliteStore(path)


def test_default_path_uses_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    assert default_store_path({}) == Path("otelgate-data/otelgate.db")
    assert default_store_path({"OTELGATE_DATA_DIR": "/var/lib/og"}) == Path(
        "/var/lib/og/otelgate.db"
    )
    monkeypatch.setenv("OTELGATE_DATA_DIR", str(tmp_path / "data"))
    store = open_store(StoreConfig())
    assert store.path == tmp_path / "data" / "otelgate.db" and store.path.exists()
    store.close()
    explicit = open_store(StoreConfig(path=str(tmp_path / "x.db")))
    assert explicit.path == tmp_path / "x.db"
    explicit.close()
