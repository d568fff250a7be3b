"""Daily rotation, gzip of rotated files, retention by age, crash repair, and the audit
file's rotation status: the chain goes on across all of it and ``verify`` still holds."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from gateway.audit.chain import Entry, epoch_seconds, parse_entry
from gateway.audit.files import open_member, rotated_files
from gateway.audit.reader import read_page
from gateway.audit.trail import AuditTrail
from gateway.audit.verify import verify
from gateway.logfiles.managed import ManagedFile
from gateway.logfiles.metrics import LogFilesCollector
from tests.gateway.audit.helpers import START, Clock, make_trail

DAY = 86400.0
HOUR = 3600.0


def members(directory: Path) -> list[Path]:
    """The trail's files, plain and gzipped, by name."""
    return sorted(p for p in directory.iterdir() if p.name.endswith((".jsonl", ".jsonl.gz")))


def entries(path: Path) -> list[Entry]:
    with open_member(path) as fh:
        return [parse_entry(line.rstrip(b"\n")) for line in fh]


def all_entries(directory: Path) -> list[Entry]:
    return sorted((e for p in members(directory) for e in entries(p)), key=lambda e: e.seq)


def parse_time(time: str) -> float:
    seconds = epoch_seconds(time)
    assert seconds is not None
    return seconds


def daily_trail(directory: Path, clock: Clock, **kwargs: Any) -> AuditTrail:
    options: dict[str, Any] = {"daily_at": "00:00", "background": False, **kwargs}
    return make_trail(directory / "audit.jsonl", clock, **options)


def days_of_entries(trail: AuditTrail, clock: Clock, days: int, per_day: int = 3) -> None:
    for _ in range(days):
        for i in range(per_day):
            trail.record("config.reload", "ops", {"i": i})
            clock.advance(HOUR)
        clock.advance(DAY - per_day * HOUR)


def test_daily_rotation_with_an_injected_clock(tmp_path: Path) -> None:
    clock = Clock()  # 22:13:20 UTC
    trail = daily_trail(tmp_path, clock)
    trail.open()
    trail.record("alert.ack", "ops")
    clock.advance(HOUR)  # 23:13: same day
    trail.record("alert.ack", "ops")
    assert rotated_files(trail.path) == []
    clock.advance(HOUR)  # 00:13 the next day: this entry starts a new file
    trail.record("alert.ack", "ops")
    rotated = rotated_files(trail.path)
    assert [p.name for _, p in rotated] == ["audit.000000000001.jsonl"]
    rotate, ack = entries(trail.path)
    assert rotate.action == "audit.rotate" and rotate.details["reason"] == "daily"
    assert rotate.details["previous_file"] == "audit.000000000001.jsonl"
    assert rotate.time.startswith("2023-11-15T00:13") and ack.seq == rotate.seq + 1
    # a quiet trail rotates too, at the maintenance pass after the next 00:00
    clock.advance(DAY)
    trail.maintain()
    assert len(rotated_files(trail.path)) == 2
    assert [e.action for e in entries(trail.path)] == ["audit.rotate"]
    trail.maintain()  # not twice a day
    assert len(rotated_files(trail.path)) == 2
    trail.close()
    status = trail.status()
    assert status.rotations == {"daily": 2} and status.rotated_files == 2
    assert verify([tmp_path]).ok


def test_a_restart_on_a_later_day_rotates_before_writing(tmp_path: Path) -> None:
    clock = Clock()
    trail = daily_trail(tmp_path, clock)
    trail.open()
    trail.close()
    clock.advance(6 * HOUR)  # the gateway was down over midnight
    again = daily_trail(tmp_path, clock)
    again.open()
    rotate, start = entries(again.path)
    assert (rotate.action, rotate.details["reason"], start.action) == (
        "audit.rotate", "daily", "audit.start"
    )  # fmt: skip
    again.close()
    assert verify([tmp_path]).ok


def test_rotated_files_are_gzipped_and_verify_reads_them(tmp_path: Path) -> None:
    clock = Clock()
    trail = daily_trail(tmp_path, clock, compress=True, max_size=4096)
    trail.open()
    days_of_entries(trail, clock, 3)
    for i in range(60):
        trail.record("config.reload", "ops", {"i": i, "pad": "x" * 40})
    trail.maintain()
    names = [p.name for p in members(tmp_path)]
    assert names[-1] == "audit.jsonl" and all(n.endswith(".gz") for n in names[:-1])
    assert len(names) >= 4
    status = trail.status()
    assert status.compressed_bytes > status.gzip_bytes > 0
    assert status.rotations["daily"] == 3 and status.rotations["size"] >= 1
    trail.close()
    result = verify([tmp_path])
    assert result.ok, result.problem
    assert result.entries == len(all_entries(tmp_path))
    # the gzip member holds exactly what was written (compression keeps the content)
    first = tmp_path / "audit.000000000001.jsonl.gz"
    assert gzip.decompress(first.read_bytes()).count(b"\n") == len(entries(first))


def test_a_changed_byte_inside_a_gzip_member_breaks_the_chain(tmp_path: Path) -> None:
    clock = Clock()
    trail = daily_trail(tmp_path, clock, compress=True)
    trail.open()
    days_of_entries(trail, clock, 2, per_day=40)
    trail.maintain()
    trail.close()
    assert verify([tmp_path]).ok
    member = tmp_path / "audit.000000000001.jsonl.gz"
    data = bytearray(member.read_bytes())
    data[len(data) // 2] ^= 0x55
    member.write_bytes(bytes(data))
    result = verify([tmp_path])
    assert result.problem is not None and result.problem.file == member
    assert result.problem.kind in ("bad_gzip", "bad_link", "bad_json", "seq_gap")


def test_age_retention_removes_old_files_and_records_each_removal(tmp_path: Path) -> None:
    clock = Clock()
    trail = daily_trail(tmp_path, clock, compress=True, max_age=2.5 * DAY)
    trail.open()
    for _ in range(6):
        days_of_entries(trail, clock, 1)
        trail.maintain()
    rotated = rotated_files(trail.path)
    assert rotated[0][0] > 1 and len(rotated) == 2
    for _, path in rotated:  # what is kept is younger than max_age
        assert parse_time(entries(path)[-1].time) >= clock.now - 2.5 * DAY
    prunes = [e for e in all_entries(tmp_path) if e.action == "audit.prune"]
    assert prunes and {p.details["reason"] for p in prunes} == {"age"}
    assert all(p.details["file"].endswith(".jsonl.gz") for p in prunes)  # gzipped first
    last = prunes[-1].details  # the one that accounts for where the trail now starts
    assert last["last_seq"] + 1 == rotated[0][0]
    removed = trail.status().removed_files["age"]
    assert removed >= len(prunes) and removed >= 3  # earlier prunes went with their files
    trail.close()
    result = verify([tmp_path])
    assert result.ok, result.problem
    assert any("were pruned" in note for note in result.notes)


def test_count_retention_still_works_with_gzip(tmp_path: Path) -> None:
    trail = make_trail(tmp_path / "audit.jsonl", max_size=4096, max_files=2, compress=True)
    trail.open()
    for i in range(150):
        trail.record("config.reload", "ops", {"i": i, "pad": "y" * 40})
    trail.close()
    assert len(rotated_files(trail.path)) == 2
    prunes = [e for e in all_entries(tmp_path) if e.action == "audit.prune"]
    assert prunes and {p.details["reason"] for p in prunes} == {"count"}
    assert verify([tmp_path]).ok


def test_a_crash_between_rotation_and_compression_is_repaired_at_start(
    tmp_path: Path,
) -> None:
    clock = Clock()
    trail = daily_trail(tmp_path, clock)  # no compression: a crash before it ran
    trail.open()
    days_of_entries(trail, clock, 3)
    trail.close()
    plain = [p for _, p in rotated_files(trail.path)]
    assert len(plain) == 3 and not any(p.name.endswith(".gz") for p in plain)
    # a compression cut short in its middle, and one cut after its rename
    (tmp_path / (plain[0].name + ".gz.tmp")).write_bytes(b"\x1f\x8bpartial")
    (tmp_path / (plain[1].name + ".gz")).write_bytes(gzip.compress(plain[1].read_bytes()))
    assert verify([tmp_path]).ok  # the plain twin is skipped, the .gz read
    again = daily_trail(tmp_path, clock, compress=True)
    again.open()
    assert not list(tmp_path.glob("*.tmp")) and not plain[1].exists()
    again.maintain()
    again.close()
    assert [p.name for _, p in rotated_files(again.path)] == [p.name + ".gz" for p in plain]
    assert verify([tmp_path]).ok


def test_resume_when_the_newest_rotated_file_is_gzipped(tmp_path: Path) -> None:
    clock = Clock()
    trail = daily_trail(tmp_path, clock, compress=True)
    trail.open()
    days_of_entries(trail, clock, 2)
    trail.maintain()
    trail.close()
    trail.path.unlink()  # lost between a rotation's rename and its first write
    again = daily_trail(tmp_path, clock, compress=True)
    again.open()
    first = entries(again.path)[0]
    assert first.action == "audit.rotate" and first.details["reason"].startswith("resumed")
    assert first.details["previous_file"].endswith(".jsonl.gz")
    again.close()
    assert verify([tmp_path]).ok


def test_the_reader_pages_through_gzip_members(tmp_path: Path) -> None:
    clock = Clock()
    trail = daily_trail(tmp_path, clock, compress=True)
    trail.open()
    days_of_entries(trail, clock, 3)
    trail.maintain()
    files = trail.files()
    assert sum(p.name.endswith(".gz") for p in files) == 3
    page = read_page(files, trail.linker, limit=1000)
    head = trail.head
    assert head is not None
    assert [item.entry.seq for item in page.entries] == list(range(head.seq, 0, -1))
    assert page.entries[-1].file == "audit.000000000001.jsonl.gz"
    older = read_page(files, trail.linker, limit=2, before_seq=3)
    assert [item.entry.seq for item in older.entries] == [2, 1]
    trail.close()


def test_the_audit_file_is_a_managed_file(tmp_path: Path) -> None:
    clock = Clock()
    trail = daily_trail(
        tmp_path, clock, compress=True, usage=lambda p: (10**12, 10**11, 9 * 10**11)
    )
    trail.open()
    days_of_entries(trail, clock, 2)
    trail.maintain()
    registry = CollectorRegistry()
    registry.register(LogFilesCollector(lambda: [ManagedFile("audit", trail)]))
    labels = {"path": str(trail.path), "owner": "audit"}
    value = registry.get_sample_value
    assert value("otelgate_log_file_status", labels) == 0
    assert value("otelgate_log_file_rotations_total", {**labels, "reason": "daily"}) == 2
    assert value("otelgate_log_file_size_bytes", labels) == trail.path.stat().st_size
    assert (value("otelgate_log_file_compressed_bytes_total", labels) or 0) > 0
    trail.close()


def test_a_failed_compression_is_a_warning_until_it_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.logfiles import compress

    clock = Clock()
    trail = daily_trail(
        tmp_path, clock, compress=True, usage=lambda p: (10**12, 10**11, 9 * 10**11)
    )
    trail.open()
    days_of_entries(trail, clock, 1)
    real = compress.compress

    def refuse(path: Path) -> compress.Compressed:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(compress, "compress", refuse)
    trail.maintain()
    status = trail.status()
    assert status.level == "warning" and "compress failed" in status.reasons[0]
    monkeypatch.setattr(compress, "compress", real)
    trail.maintain()
    assert trail.status().level == "healthy"
    trail.close()
    assert verify([tmp_path]).ok


def test_from_config_applies_the_audit_defaults(tmp_path: Path) -> None:
    from gateway.audit.config import AuditConfig

    config = AuditConfig.model_validate({"path": str(tmp_path / "audit.jsonl")})
    assert (config.daily_at, config.compress, config.max_age, config.max_files) == (
        "00:00", True, None, None
    )  # fmt: skip
    trail = AuditTrail.from_config(config, clock=Clock(START))
    assert trail.daily_at == "00:00" and trail._upkeep.compress is True
