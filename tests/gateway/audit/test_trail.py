"""Writing the trail: resuming after a restart, rotation, retention, damage, aggregation."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import stat
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from gateway.audit import trail as trail_module
from gateway.audit.chain import GENESIS, HMAC_SHA256, Entry, Linker, parse_entry
from gateway.audit.resume import AuditError
from gateway.audit.trail import AuditTrail
from gateway.audit.verify import verify
from tests.gateway.audit.helpers import KEY, Clock, lines, make_trail, trail_files, write_trail


def entries(path: Path) -> list[Entry]:
    return [parse_entry(line.rstrip(b"\n")) for line in lines(path)]


def all_entries(directory: Path) -> list[Entry]:
    found = [e for path in trail_files(directory) for e in entries(path)]
    return sorted(found, key=lambda e: e.seq)


def test_a_new_trail_starts_at_genesis(tmp_path: Path) -> None:
    trail = make_trail(tmp_path / "audit" / "audit.jsonl")
    assert trail.head is None
    trail.open()
    written = trail.record("alert.ack", "ops", {"alert": "HighCpu", "until": None})
    assert written is not None and written.seq == 2
    head = trail.head
    trail.close()
    path = tmp_path / "audit" / "audit.jsonl"
    start, ack, stop = entries(path)
    assert (start.seq, start.action, start.prev) == (1, "audit.start", GENESIS)
    assert start.details["alg"] == "sha256" and start.details["pid"] == os.getpid()
    assert ack.prev == Linker().link(lines(path)[0].rstrip(b"\n"))
    assert (ack.actor, ack.details) == ("ops", {"alert": "HighCpu", "until": None})
    assert stop.action == "audit.stop" and stop.details == {"entries": 3}
    assert head is not None and head.seq == 2 and stop.prev == head.hash
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert verify([path]).ok


def test_a_restart_resumes_the_chain(tmp_path: Path) -> None:
    write_trail(tmp_path, 3)
    trail = write_trail(tmp_path, 2)
    found = entries(tmp_path / "audit.jsonl")
    assert [e.seq for e in found] == list(range(1, 10))
    assert [e.action for e in found].count("audit.start") == 2
    result = verify([tmp_path])
    assert result.ok and result.entries == 9
    assert trail.head is not None and result.head == trail.head.hash


def test_rotation_keeps_the_chain_across_files(tmp_path: Path) -> None:
    trail = write_trail(tmp_path, 60, max_size=2500)
    files = trail_files(tmp_path)
    assert len(files) >= 4 and tmp_path / "audit.jsonl" in files
    for path in files:
        first = entries(path)[0]
        assert first.action in ("audit.start", "audit.rotate")
        if first.action == "audit.rotate":
            previous = next(p for p in files if p.name == first.details["previous_file"])
            assert first.prev == Linker().link(lines(previous)[-1].rstrip(b"\n"))
            assert previous.name == f"audit.{entries(previous)[0].seq:012d}.jsonl"
            assert first.details["previous_last_seq"] == first.seq - 1
    assert [e.seq for e in all_entries(tmp_path)] == list(range(1, 63 + len(files) - 1))
    result = verify(list(reversed(files)))  # given in any order
    assert result.ok and len(result.files) == len(files)
    assert trail.files() == sorted(files, key=lambda p: entries(p)[0].seq)


def test_retention_removes_old_files_and_records_it(tmp_path: Path) -> None:
    trail = make_trail(tmp_path / "pruned" / "audit.jsonl", max_size=2500, max_files=2)
    trail.open()
    for i in range(80):
        trail.record("config.reload", "ops", {"i": i, "diff": {"changed": ["a.b"]}})
    trail.close()
    files = trail_files(tmp_path / "pruned")
    assert len(files) == 3  # two rotated, one active
    prunes = [e for e in all_entries(tmp_path / "pruned") if e.action == "audit.prune"]
    assert prunes and all(p.details["file"].startswith("audit.0") for p in prunes)
    result = verify(files)
    assert result.ok, result.problem
    assert any("were pruned" in note for note in result.notes)
    assert entries(files[0])[0].seq > 1  # the genesis file is gone, and the chain says so


def test_a_truncated_tail_is_kept_and_the_chain_continues_in_a_new_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_trail(tmp_path, 5)
    path = tmp_path / "audit.jsonl"
    with open(path, "ab") as fh:
        fh.write(b'{"action":"config.rel')  # a crash in the middle of a write
    with caplog.at_level(logging.ERROR, logger="otelgate.audit"):
        write_trail(tmp_path, 1)
    assert "ends broken after seq 7" in caplog.text
    moved = tmp_path / "audit.000000000001.jsonl"
    assert moved.read_bytes().endswith(b'{"action":"config.rel')
    recover = entries(path)[0]
    assert recover.action == "audit.recover" and recover.seq == 8
    assert recover.details == {
        "previous_file": moved.name, "last_good_seq": 7, "discarded_bytes": 21,
        "problem": "21 bytes without a newline at the end",
    }  # fmt: skip
    result = verify([tmp_path])
    assert result.ok, result.problem
    assert any("21 damaged bytes" in note for note in result.notes)
    with open(moved, "ab") as fh:  # more damage than the recover entry accounts for
        fh.write(b"x")
    problem = verify([tmp_path]).problem
    assert problem is not None and (problem.file, problem.line) == (moved, 8)


def test_garbage_lines_at_the_end_are_not_continued_either(tmp_path: Path) -> None:
    write_trail(tmp_path, 2)
    with open(tmp_path / "audit.jsonl", "ab") as fh:
        fh.write(b"garbage\n{}\n")
    write_trail(tmp_path, 1)
    recover = entries(tmp_path / "audit.jsonl")[0]
    assert recover.action == "audit.recover" and recover.details["discarded_bytes"] == 11
    assert verify([tmp_path]).ok


def test_a_file_with_no_readable_end_is_refused(tmp_path: Path) -> None:
    (tmp_path / "audit.jsonl").write_bytes(b"garbage\n")
    with pytest.raises(AuditError, match="no readable audit entry"):
        make_trail(tmp_path / "audit.jsonl").open()
    # and the lock was released: fixing the file lets a trail open
    (tmp_path / "audit.jsonl").unlink()
    make_trail(tmp_path / "audit.jsonl").open()


def test_keys(tmp_path: Path) -> None:
    write_trail(tmp_path, 2, key=KEY)
    assert entries(tmp_path / "audit.jsonl")[-1].alg == HMAC_SHA256
    with pytest.raises(AuditError, match="HMAC-linked; configure its key"):
        make_trail(tmp_path / "audit.jsonl").open()
    with pytest.raises(AuditError, match="does not verify with the configured key"):
        make_trail(tmp_path / "audit.jsonl", key=b"x" * 32).open()
    write_trail(tmp_path, 1, key=KEY)
    assert verify([tmp_path], key=KEY).ok
    # a trail written without a key may gain one: links are HMAC from then on
    write_trail(tmp_path / "plain", 2)
    write_trail(tmp_path / "plain", 2, key=KEY)
    assert verify([tmp_path / "plain"], key=KEY).ok


def test_one_writer_per_trail(tmp_path: Path) -> None:
    first = make_trail(tmp_path / "audit.jsonl")
    first.open()
    with pytest.raises(AuditError, match="another process writes this audit trail"):
        make_trail(tmp_path / "audit.jsonl").open()
    first.close()


def test_a_missing_active_file_continues_from_the_newest_rotated_one(tmp_path: Path) -> None:
    write_trail(tmp_path, 30, max_size=2500)
    (tmp_path / "audit.jsonl").unlink()  # or lost between a rotation's rename and first write
    write_trail(tmp_path, 1, max_size=2500)
    first = entries(tmp_path / "audit.jsonl")[0]
    assert first.action == "audit.rotate" and first.details["reason"].startswith("resumed")
    assert verify([tmp_path]).ok  # the removed entries are the chain's blind spot (--head)


def test_token_use_is_aggregated_per_name_per_minute(tmp_path: Path) -> None:
    clock = Clock(1_700_000_070.0)  # 22:14:30
    trail = make_trail(tmp_path / "audit.jsonl", clock)
    trail.open()
    for _ in range(3):
        trail.note_token_use("ci", requests=1, items=10)
    trail.note_token_use("ops", requests=2)
    assert [e.action for e in entries(tmp_path / "audit.jsonl")] == ["audit.start"]
    clock.advance(30)  # the next minute: the first note of it writes the last minute's
    trail.note_token_use("ci", items=5)
    uses = [e for e in entries(tmp_path / "audit.jsonl") if e.action == "auth.token_use"]
    assert [(e.actor, e.details) for e in uses] == [
        ("ci", {"minute": "2023-11-14T22:14:00.000Z", "requests": 3, "items": 30}),
        ("ops", {"minute": "2023-11-14T22:14:00.000Z", "requests": 2, "items": 0}),
    ]
    trail.close()  # writes the current minute too
    last = [e for e in entries(tmp_path / "audit.jsonl") if e.action == "auth.token_use"][-1]
    assert (last.actor, last.details["requests"], last.details["items"]) == ("ci", 1, 5)


def test_auth_failures_are_written_up_to_a_cap_then_summarised(tmp_path: Path) -> None:
    clock = Clock()
    trail = make_trail(tmp_path / "audit.jsonl", clock, auth_failures_per_minute=2)
    trail.open()
    for i in range(7):
        trail.note_auth_failure("bad token" if i % 2 else "no token", f"10.0.0.{i}", None)
    trail.note_auth_failure("expired", "10.0.0.9", name="ci")
    written = [e for e in entries(tmp_path / "audit.jsonl") if e.action.startswith("auth.")]
    assert [(e.action, e.details) for e in written] == [
        ("auth.failure", {"reason": "no token", "peer": "10.0.0.0"}),
        ("auth.failure", {"reason": "bad token", "peer": "10.0.0.1"}),
    ]
    clock.advance(60)
    assert trail.flush() == 1
    summary = entries(tmp_path / "audit.jsonl")[-1]
    assert summary.action == "auth.failure.suppressed" and summary.actor is None
    assert summary.details["suppressed"] == 6 and summary.details["written"] == 2
    assert summary.details["reasons"] == {"no token": 3, "bad token": 2, "expired": 1}
    assert summary.details["sample_peers"][:2] == ["10.0.0.2", "10.0.0.3"]
    trail.note_auth_failure("expired", "10.0.0.9", name="ci")  # a new minute, a new budget
    assert entries(tmp_path / "audit.jsonl")[-1].actor == "ci"
    trail.close()
    assert verify([tmp_path]).ok


def test_metrics_go_to_the_injected_registry(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    trail = make_trail(tmp_path / "audit.jsonl", registry=registry)
    trail.open()
    trail.record("silence.create", "ops", {"matchers": {"alertname": "HighCpu"}})
    trail.close()
    value = registry.get_sample_value
    assert value("otelgate_audit_entries_total", {"action": "silence.create"}) == 1
    assert value("otelgate_audit_entries_total", {"action": "audit.start"}) == 1
    assert value("otelgate_audit_write_errors_total") == 0


def test_a_failed_write_leaves_no_half_line_and_the_chain_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = CollectorRegistry()
    trail = make_trail(tmp_path / "audit.jsonl", registry=registry)
    trail.open()
    real_write = os.write

    def half_then_full(fd: int, data: bytes | memoryview) -> int:
        real_write(fd, bytes(data)[:10])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(trail_module.os, "write", half_then_full)
    assert trail.record("config.reload", None, {"ok": False}) is None
    monkeypatch.setattr(trail_module.os, "write", real_write)
    assert trail.record("config.reload", None, {"ok": True}) is not None
    trail.close()
    assert registry.get_sample_value("otelgate_audit_write_errors_total") == 1
    assert [e.details.get("ok") for e in entries(tmp_path / "audit.jsonl")][1:3] == [True, None]
    assert verify([tmp_path]).ok


def test_misuse(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    trail = make_trail(tmp_path / "audit.jsonl", registry=registry)
    assert trail.record("config.reload") is None  # not open: counted, not raised
    assert registry.get_sample_value("otelgate_audit_write_errors_total") == 1
    with pytest.raises(ValueError, match="dotted lower case"):
        trail.record("reload")
    trail.open()
    big = trail.record("config.reload", "x" * 1000, {"diff": "y" * 100_000})
    assert big is not None and big.details["truncated"] is True and len(big.actor or "") == 256
    trail.close()
    trail.close()  # twice is fine


def test_sync_interval_zero_fsyncs_every_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    monkeypatch.setattr(trail_module.os, "fsync", lambda fd: synced.append(fd))
    trail = make_trail(tmp_path / "audit.jsonl", sync_interval=0)
    trail.open()
    trail.record("alert.ack", "ops")
    assert len(synced) == 2


async def test_start_and_stop(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    trail = make_trail(tmp_path / "audit.jsonl", clock, sync_interval=0.05)
    await trail.start()
    trail.note_token_use("ci")
    clock.advance(60)
    for _ in range(100):  # the task writes the past minute's aggregate
        if any(e.action == "auth.token_use" for e in entries(tmp_path / "audit.jsonl")):
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("the minute's token use was never written")
    with caplog.at_level(logging.INFO, logger="otelgate.audit"):
        await trail.stop()
    head = trail.head
    assert head is not None and f"head {head.hash}" in caplog.text
    assert entries(tmp_path / "audit.jsonl")[-1].action == "audit.stop"
    assert verify([tmp_path], head=head.hash).ok


def test_from_config(tmp_path: Path) -> None:
    from gateway.audit.config import AuditConfig

    key = tmp_path / "key"
    key.write_bytes(KEY)
    key.chmod(0o600)
    config = AuditConfig.model_validate({"hmac_key_file": str(key), "max_files": 3})
    trail = AuditTrail.from_config(config, environ={"OTELGATE_DATA_DIR": str(tmp_path)})
    assert trail.path == tmp_path / "audit" / "audit.jsonl"
    assert trail.linker.alg == HMAC_SHA256 and trail.max_files == 3
