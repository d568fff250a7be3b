"""RotatingFile: rotation by size and daily (clock injected), gzip round trip, retention by
age and count, torn-line repair, and what a failure at each step of a rotation leaves."""

from __future__ import annotations

import calendar
import errno
import gzip
import os
import time
from pathlib import Path

import pytest

from gateway.logfiles import compress
from gateway.logfiles.config import DAY, RotationConfig
from gateway.logfiles.naming import rotated_files
from gateway.logfiles.writer import RotatingFile
from tests.support.rotated_files import all_files, all_lines

T0 = float(calendar.timegm((2025, 3, 1, 10, 0, 0)))  # 2025-03-01 10:00:00 UTC


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _writer(path: Path, clock: Clock, **rotation: object) -> RotatingFile:
    config = RotationConfig.model_validate({"daily_at": None, "max_age": None, **rotation})
    writer = RotatingFile(path, config, now=clock, background=False)
    writer.open()
    return writer


def _line(i: int, width: int = 20) -> bytes:
    return f"line {i:05d} ".ljust(width, "x").encode() + b"\n"


def test_rotates_before_a_write_would_pass_max_size(tmp_path: Path) -> None:
    path = tmp_path / "out.log"
    writer = _writer(path, Clock(), max_size=3 * 21 + 10, compress=False)
    for i in range(10):
        writer.write(_line(i))
    writer.close()
    files = all_files(path)
    assert [len(f.read_bytes().splitlines()) for f in files] == [3, 3, 3, 1]
    assert all(f.stat().st_size <= 73 for f in files)
    assert all_lines(path) == [_line(i).rstrip(b"\n") for i in range(10)]
    assert [f.name for f in files[:3]] == [
        "out.log.20250301T100000Z-000", "out.log.20250301T100000Z-001",
        "out.log.20250301T100000Z-002",
    ]  # fmt: skip
    assert writer.status().rotations == {"size": 3}


def test_daily_rotation_when_the_time_passes(tmp_path: Path) -> None:
    path = tmp_path / "day.log"
    clock = Clock(T0)  # 10:00 UTC, daily at 12:30
    writer = _writer(path, clock, daily_at="12:30", compress=False)
    writer.write(_line(1))
    clock.now = T0 + 2 * 3600 + 29 * 60 + 59  # 12:29:59: not yet
    writer.write(_line(2))
    assert rotated_files(path) == []
    clock.now = T0 + 2.5 * 3600  # 12:30:00
    writer.write(_line(3))
    [rotated] = rotated_files(path)
    assert rotated.path.name == "day.log.20250301T123000Z-000"
    assert rotated.path.read_bytes() == _line(1) + _line(2)
    # The next day's rotation is at 12:30 tomorrow, not before.
    clock.now = T0 + DAY
    writer.write(_line(4))
    assert len(rotated_files(path)) == 1
    clock.now = T0 + DAY + 2.5 * 3600
    writer.maintain()  # a quiet file is rotated by maintenance, without a write
    assert len(rotated_files(path)) == 2
    assert path.read_bytes() == b""
    writer.close()
    assert all_lines(path) == [_line(i).rstrip(b"\n") for i in (1, 2, 3, 4)]


def test_a_process_started_after_the_daily_time_rotates_yesterdays_file(tmp_path: Path) -> None:
    path = tmp_path / "old.log"
    path.write_bytes(_line(1))
    yesterday = T0 - DAY  # last written yesterday 10:00; daily at 00:00 has passed since
    os.utime(path, (yesterday, yesterday))
    writer = _writer(path, Clock(T0), daily_at="00:00", compress=False)
    writer.write(_line(2))
    [rotated] = rotated_files(path)
    assert rotated.path.read_bytes() == _line(1)
    assert path.read_bytes() == _line(2)
    writer.close()


def test_a_file_written_today_is_not_rotated_at_start(tmp_path: Path) -> None:
    path = tmp_path / "today.log"
    path.write_bytes(_line(1))
    os.utime(path, (T0 - 3600, T0 - 3600))  # 09:00 today, after today's 00:00
    writer = _writer(path, Clock(T0), daily_at="00:00")
    writer.write(_line(2))
    writer.maintain()
    assert rotated_files(path) == []
    writer.close()


def test_an_empty_file_is_not_rotated_at_the_daily_time(tmp_path: Path) -> None:
    path = tmp_path / "quiet.log"
    clock = Clock(T0)
    writer = _writer(path, clock, daily_at="00:00")
    clock.now = T0 + DAY
    writer.maintain()
    writer.write(_line(1))
    assert rotated_files(path) == []
    writer.close()


def test_gzip_round_trips_every_line_in_order(tmp_path: Path) -> None:
    path = tmp_path / "z.jsonl"
    writer = _writer(path, Clock(), max_size=4096)
    lines = [os.urandom(30).hex().encode() + b"\n" for _ in range(1000)]
    for line in lines:
        writer.write(line)
    writer.maintain()
    writer.close()
    rotated = rotated_files(path)
    assert len(rotated) > 10 and all(f.compressed for f in rotated)
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    with gzip.open(rotated[0].path, "rb") as first:
        assert first.read().startswith(lines[0])
    assert all_lines(path) == [line.rstrip(b"\n") for line in lines]
    status = writer.status()
    assert status.compressed_bytes == sum(len(x) for x in lines) - path.stat().st_size
    assert 0 < status.gzip_bytes < status.compressed_bytes


def test_age_retention_removes_files_rotated_before_max_age(tmp_path: Path) -> None:
    path = tmp_path / "aged.log"
    clock = Clock()
    writer = _writer(path, clock, max_size=30, max_age="3d")
    for day in range(6):
        clock.now = T0 + day * DAY
        writer.write(_line(day))  # rotates the previous day's line (size)
        writer.maintain()
    # Rotated at days 1..5 (each holding the day before); now is day 5: days 2..5 are kept
    # (day 2 is exactly 3 days old), day 1 is older.
    kept = [f.rotated_at for f in rotated_files(path)]
    assert kept == [T0 + d * DAY for d in (2, 3, 4, 5)]
    assert writer.status().removed_files == {"age": 1}
    writer.close()


def test_count_retention_keeps_the_newest_max_files(tmp_path: Path) -> None:
    path = tmp_path / "count.log"
    clock = Clock()
    writer = _writer(path, clock, max_size=30, max_files=2)
    for i in range(6):
        clock.now = T0 + i
        writer.write(_line(i))
    writer.maintain()
    assert [f.rotated_at for f in rotated_files(path)] == [T0 + 4, T0 + 5]
    assert all_lines(path) == [_line(i).rstrip(b"\n") for i in (3, 4, 5)]
    assert writer.status().removed_files == {"count": 3}
    writer.close()


def test_max_files_zero_keeps_no_rotated_file(tmp_path: Path) -> None:
    path = tmp_path / "none.log"
    writer = _writer(path, Clock(), max_size=30, max_files=0)
    for i in range(3):
        writer.write(_line(i))
    writer.maintain()
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".none.log.lock", "none.log"]


def test_a_torn_last_line_is_cut_on_open(tmp_path: Path) -> None:
    path = tmp_path / "torn.log"
    path.write_bytes(_line(1) + _line(2) + b"line 00003 xx")  # killed mid-write
    writer = _writer(path, Clock())
    assert writer.repaired_bytes == len(b"line 00003 xx")
    writer.write(_line(3))
    writer.close()
    assert path.read_bytes() == _line(1) + _line(2) + _line(3)


def test_a_file_of_one_torn_line_becomes_empty(tmp_path: Path) -> None:
    path = tmp_path / "torn.log"
    path.write_bytes(b"x" * 100_000)  # longer than one tail read
    writer = _writer(path, Clock())
    writer.close()
    assert path.read_bytes() == b""


def test_a_line_must_end_with_a_newline(tmp_path: Path) -> None:
    writer = _writer(tmp_path / "x.log", Clock())
    with pytest.raises(ValueError, match="newline"):
        writer.write(b"no newline")
    writer.close()


# --- a failure at each step of a rotation or compression loses nothing ----------------------


class Boom(OSError):
    def __init__(self) -> None:
        super().__init__(errno.EIO, "injected failure")


def _fail(monkeypatch: pytest.MonkeyPatch, target: object, name: str, after: int = 0) -> None:
    """Make ``target.name`` raise after ``after`` successful calls."""
    real = getattr(target, name)
    calls = {"n": 0}

    def failing(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] > after:
            raise Boom()
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, failing)


def test_a_failed_rotation_keeps_writing_to_the_active_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.log"
    clock = Clock()
    writer = _writer(path, clock, max_size=30, compress=False, check_interval=60)
    writer.write(_line(0))
    with monkeypatch.context() as patch:
        _fail(patch, os, "rename")  # rotation is the rename: nothing else can fail in it
        writer.write(_line(1))  # rotation fails, the line is still written
        assert writer.status().level == "warning"
        assert "rotate failed" in writer.status().reasons[0]
    writer.write(_line(2))  # no new attempt before check_interval
    assert rotated_files(path) == []
    clock.now += 60
    writer.write(_line(3))
    assert len(rotated_files(path)) == 1 and writer.status().level == "healthy"
    writer.close()
    assert all_lines(path) == [_line(i).rstrip(b"\n") for i in range(4)]


def test_reopening_after_the_rename_fails_the_write_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "o.log"
    writer = _writer(path, Clock(), max_size=30, compress=False)
    writer.write(_line(0))
    with monkeypatch.context() as patch:
        patch.setattr(writer, "_cut_torn_line", lambda fd: (_ for _ in ()).throw(Boom()))
        with pytest.raises(OSError):
            writer.write(_line(1))
        assert writer.status().level == "critical"
    writer.write(_line(1))  # the caller retries
    writer.close()
    assert all_lines(path) == [_line(0).rstrip(b"\n"), _line(1).rstrip(b"\n")]


@pytest.mark.parametrize(
    ("target", "name", "after"),
    [
        (compress.os, "fsync", 0),  # the rotated file's fsync, before its compression
        (compress.shutil, "copyfileobj", 0),  # while writing the .gz.tmp.<pid>
        (compress.os, "fsync", 3),  # the .gz.tmp.<pid> written, not synced
        (compress.os, "replace", 0),  # .gz.tmp.<pid> synced, not renamed
    ],
)
def test_a_failed_compression_keeps_the_plain_file_and_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: object, name: str, after: int
) -> None:
    path = tmp_path / "c.log"
    clock = Clock()
    writer = _writer(path, clock, max_size=30)
    for i in range(3):
        writer.write(_line(i))
    with monkeypatch.context() as patch:
        _fail(patch, target, name, after)
        writer.maintain()
    assert writer.status().level == "warning"
    assert [f.compressed for f in rotated_files(path)] == [False, False]
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    assert all_lines(path) == [_line(i).rstrip(b"\n") for i in range(3)]
    clock.now += 60  # a failed step is tried again at the next check_interval
    writer.maintain()
    assert [f.compressed for f in rotated_files(path)] == [True, True]
    assert writer.status().level == "healthy"
    writer.close()


def test_a_crash_between_rename_and_unlink_is_repaired_on_open(tmp_path: Path) -> None:
    path = tmp_path / "k.log"
    writer = _writer(path, Clock(), max_size=30, compress=False)
    for i in range(3):
        writer.write(_line(i))
    writer.close()
    first, second = rotated_files(path)
    # Killed after the .gz of `first` was complete but before its plain file was removed,
    # and in the middle of writing the .gz of `second`:
    with open(first.path, "rb") as src, gzip.open(str(first.path) + ".gz", "wb") as dst:
        dst.write(src.read())
    Path(str(second.path) + ".gz.tmp.4242").write_bytes(b"\x1f\x8b partial")
    Path(str(second.path) + ".gz.tmp").write_bytes(b"\x1f\x8b an earlier version's")
    reopened = _writer(path, Clock(), max_size=30)
    assert [f.compressed for f in rotated_files(path)] == [True, False]
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    reopened.maintain()
    reopened.close()
    assert all_lines(path) == [_line(i).rstrip(b"\n") for i in range(3)]


def test_a_write_that_fails_leaves_no_partial_line_and_is_critical(tmp_path: Path) -> None:
    path = tmp_path / "full.log"
    writer = _writer(path, Clock())
    writer.write(_line(0))

    class DiskFull:
        def __init__(self, real: object) -> None:
            self.real = real

        def write(self, data: memoryview) -> int:
            os.write(self.fileno(), bytes(data[:5]))
            raise OSError(errno.ENOSPC, "No space left on device")

        def fileno(self) -> int:
            return self.real.fileno()  # type: ignore[attr-defined]

    real = writer._file
    writer._file = DiskFull(real)  # type: ignore[assignment]
    with pytest.raises(OSError):
        writer.write(_line(1))
    status = writer.status()
    assert status.level == "critical" and status.failures == {"write": 1}
    assert "No space left" in status.reasons[0]
    writer._file = real
    writer.write(_line(2))
    writer.close()
    assert path.read_bytes() == _line(0) + _line(2)


def test_background_maintenance_compresses_after_a_rotation(tmp_path: Path) -> None:
    path = tmp_path / "bg.log"
    config = RotationConfig(max_size=30, daily_at=None, check_interval=3600)
    writer = RotatingFile(path, config)
    writer.open()
    for i in range(3):
        writer.write(_line(i))
    deadline = time.monotonic() + 10
    while not all(f.compressed for f in rotated_files(path)) and time.monotonic() < deadline:
        time.sleep(0.02)
    writer.close()
    assert [f.compressed for f in rotated_files(path)] == [True, True]
    assert all_lines(path) == [_line(i).rstrip(b"\n") for i in range(3)]
