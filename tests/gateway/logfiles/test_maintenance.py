"""The maintenance thread's work: the fsync of a rotated file happens there (never on the
writer's thread), a failing gzip backs off and none starts when the disk is nearly full, and
the status never raises (an odd name, an unreadable directory)."""

from __future__ import annotations

import calendar
import errno
import itertools
import os
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from gateway.logfiles import compress, status
from gateway.logfiles.config import MIB, RotationConfig
from gateway.logfiles.managed import ManagedFile
from gateway.logfiles.metrics import LogFilesCollector
from gateway.logfiles.naming import rotated_files
from gateway.logfiles.writer import RotatingFile

T0 = float(calendar.timegm((2025, 3, 1, 10, 0, 0)))
GIB = 1024 * MIB


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def _writer(path: Path, clock: Clock, **rotation: object) -> RotatingFile:
    config = RotationConfig.model_validate(
        {"daily_at": None, "max_age": None, "max_size": 30, "check_interval": 60, **rotation}
    )
    writer = RotatingFile(path, config, now=clock, background=False)
    writer.open()
    return writer


def _fill(writer: RotatingFile, lines: int = 3) -> None:
    for i in range(lines):
        writer.write(f"line {i:05d} xxxxxxxxx\n".encode())


@pytest.mark.parametrize("gzip", [True, False])
def test_rotation_does_not_fsync_the_maintenance_pass_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gzip: bool
) -> None:
    path = tmp_path / "s.log"
    writer = _writer(path, Clock(), compress=gzip)
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    _fill(writer)  # two size rotations
    assert synced == []  # the writer's thread (the event loop) never waits for the disk
    rotated = [str(f.path) for f in rotated_files(path)]
    writer.maintain()
    assert [p for p in synced if p in rotated] == rotated  # each old file, before its gzip
    assert str(tmp_path) in synced  # and the directory holding the renames
    for plain in rotated if gzip else ():
        assert synced.index(plain) < synced.index(f"{plain}.gz.tmp.{os.getpid()}")
    assert all(f.compressed == gzip for f in rotated_files(path))
    writer.close()


def test_a_failing_gzip_backs_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    writer = _writer(tmp_path / "b.log", clock)
    _fill(writer)
    attempts: list[float] = []

    def failing(plain: Path, tmp: Path | None = None) -> compress.Compressed:
        attempts.append(clock.now)
        raise OSError(errno.EIO, "injected")

    with monkeypatch.context() as patch:
        patch.setattr(compress, "compress", failing)
        for _ in range(1000):  # a pass a minute, as check_interval says
            writer.maintain()
            if len(attempts) == 10:
                break
            clock.now += 60
    waits = [b - a for a, b in itertools.pairwise(attempts)]
    assert waits == [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]  # doubling, up to 1 h
    assert writer.status().failures == {"compress": 10}
    clock.now += 3600
    writer.maintain()
    assert all(f.compressed for f in rotated_files(writer.path))
    assert writer.status().level == "healthy"
    writer.close()


def test_no_gzip_starts_when_free_space_is_critical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = _writer(tmp_path / "f.log", Clock())
    writer.usage = lambda path: (100 * GIB, 100 * GIB - 50 * MIB, 50 * MIB)
    _fill(writer)
    writer.maintain()
    assert [f.compressed for f in rotated_files(writer.path)] == [False, False]
    state = writer.status()
    assert state.level == "critical" and state.failures == {}
    writer.usage = None  # the roomy default
    writer.maintain()
    assert [f.compressed for f in rotated_files(writer.path)] == [True, True]
    writer.close()


def test_an_odd_name_beside_the_file_is_ignored(tmp_path: Path) -> None:
    writer = _writer(tmp_path / "o.log", Clock())
    (tmp_path / "o.log.20251399T000000Z").write_bytes(b"not ours\n")
    _fill(writer)
    writer.maintain()
    state = writer.status()
    assert state.level == "healthy" and state.rotated_files == 2
    writer.close()


def test_an_unreadable_directory_is_critical_and_the_metrics_survive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = _writer(tmp_path / "p.log", Clock())
    real = os.listdir

    def listdir(path: str = ".") -> list[str]:
        if str(path) == str(tmp_path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "listdir", listdir)
    state = writer.status()
    assert state.level == "critical"
    assert state.reasons == [f"cannot list {tmp_path}: [Errno 13] Permission denied: '{tmp_path}'"]
    registry = CollectorRegistry()
    registry.register(LogFilesCollector(lambda: [ManagedFile("logging", writer)]))
    text = generate_latest(registry).decode()
    assert f'otelgate_log_file_status{{owner="logging",path="{writer.path}"}} 2.0' in text
    writer.maintain()  # a maintenance pass survives it too
    writer.close()


def test_the_free_space_probe_is_looked_up_at_each_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = RotatingFile(tmp_path / "u.log", background=False)
    monkeypatch.setattr(status, "disk_usage", lambda path: (10 * GIB, 10 * GIB, 0))
    assert writer.status().free_bytes == 0 and writer.status().level == "critical"
