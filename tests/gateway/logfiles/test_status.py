"""Rotation status from free space (the probe injected) and failures, and the metrics."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from gateway.logfiles.config import MIB, FreeSpaceThresholds, RotationConfig
from gateway.logfiles.managed import ManagedFile, managed_files
from gateway.logfiles.metrics import LogFilesCollector
from gateway.logfiles.status import Tracker, degraded_reasons, space_level
from gateway.logfiles.writer import RotatingFile

GIB = 1024 * MIB


TIB = 1024 * GIB


@pytest.mark.parametrize(
    ("free", "total", "level"),
    [
        (50 * GIB, 100 * GIB, "healthy"),
        (9 * GIB, 100 * GIB, "healthy"),  # below 10 %, but 9 GiB is plenty
        (200 * GIB, 10 * TIB, "healthy"),  # 2 %, and 200 GiB free
        (500 * MIB, 1536 * MIB, "healthy"),  # under 1 GiB on a small disk, but 33 % free
        (900 * MIB, 10 * GIB, "warning"),  # below 10 % and below 1 GiB
        (99 * MIB, 1 * GIB, "warning"),  # below 100 MiB, but 9.7 % free
        (99 * MIB, 10 * GIB, "critical"),  # below 2 % and below 100 MiB
        (0, 0, "critical"),
    ],
)
def test_space_level_needs_both_the_ratio_and_the_bytes(free: int, total: int, level: str) -> None:
    assert space_level(free, total, FreeSpaceThresholds()) == level


def test_a_threshold_without_bytes_or_ratio_uses_the_other_alone() -> None:
    ratio_only = FreeSpaceThresholds.model_validate(
        {"warning": {"ratio": 0.10, "bytes": None}, "critical": {"ratio": 0.02, "bytes": None}}
    )
    assert space_level(9 * GIB, 100 * GIB, ratio_only) == "warning"
    bytes_only = FreeSpaceThresholds.model_validate(
        {"warning": {"ratio": None, "bytes": "1GiB"}, "critical": {"ratio": None, "bytes": 0}}
    )
    assert space_level(900 * MIB, 1536 * MIB, bytes_only) == "warning"
    assert space_level(0, 1536 * MIB, bytes_only) == "warning"  # bytes: 0 is never reached


def _file(tmp_path: Path, free: int, total: int = 100 * GIB) -> RotatingFile:
    def usage(path: str) -> tuple[int, int, int]:
        assert path == str(tmp_path)
        return total, total - free, free

    writer = RotatingFile(tmp_path / "f.log", RotationConfig(), usage=usage, background=False)
    writer.open()
    return writer


def test_a_full_directory_is_critical(tmp_path: Path) -> None:
    writer = _file(tmp_path, free=10 * MIB)  # 0.01 % and 10 MiB
    status = writer.status()
    assert status.level == "critical"
    assert status.reasons == ["10 MiB free (critical, 0.0%)"]
    assert status.free_bytes == 10 * MIB
    assert degraded_reasons([("logging", status)]) == [
        f"log file {tmp_path / 'f.log'} (logging) is critical: 10 MiB free (critical, 0.0%)"
    ]
    writer.close()


def test_low_space_is_a_warning_and_does_not_degrade(tmp_path: Path) -> None:
    writer = _file(tmp_path, free=512 * MIB, total=8 * GIB)
    status = writer.status()
    assert status.level == "warning" and status.free_ratio == pytest.approx(0.0625)
    assert degraded_reasons([("logging", status)]) == []
    writer.close()


def test_failures_set_the_level_until_the_step_succeeds() -> None:
    tracker = Tracker()
    thresholds = FreeSpaceThresholds()
    assert tracker.level(None, None, thresholds) == ("healthy", [])
    tracker.failed("compress", OSError(errno.EACCES, "Permission denied"))
    assert tracker.level(None, None, thresholds) == (
        "warning", ["compress failed: [Errno 13] Permission denied"]
    )  # fmt: skip
    tracker.failed("write", OSError(errno.ENOSPC, "No space left on device"))
    level, reasons = tracker.level(50 * GIB, 100 * GIB, thresholds)
    assert level == "critical" and len(reasons) == 2
    tracker.succeeded("write")
    tracker.succeeded("compress")
    assert tracker.level(None, None, thresholds) == ("healthy", [])
    assert tracker.failures == {"compress": 1, "write": 1}


def test_metrics(tmp_path: Path) -> None:
    writer = _file(tmp_path, free=64 * MIB)  # 0.06 % and 64 MiB free: critical
    writer.write(b"hello\n")
    writer.tracker.failed("rotate", OSError("x"))
    registry = CollectorRegistry()
    registry.register(LogFilesCollector(lambda: [ManagedFile("logging", writer)]))
    text = generate_latest(registry).decode()
    labels = f'owner="logging",path="{tmp_path / "f.log"}"'
    for line in [
        f"otelgate_log_file_status{{{labels}}} 2.0",
        f"otelgate_log_file_size_bytes{{{labels}}} 6.0",
        f"otelgate_log_file_free_bytes{{{labels}}} 6.7108864e+07",
        f'otelgate_log_file_rotations_total{{{labels},reason="size"}} 0.0',
        f"otelgate_log_file_compressed_bytes_total{{{labels}}} 0.0",
        f"otelgate_log_file_gzip_bytes_total{{{labels}}} 0.0",
        f'otelgate_log_file_removed_files_total{{{labels},reason="age"}} 0.0',
        f'otelgate_log_file_failures_total{{{labels},step="rotate"}} 1.0',
    ]:
        assert line in text.splitlines(), line
    writer.close()


def test_managed_files_are_found_on_the_logger_and_the_exporters(tmp_path: Path) -> None:
    from gateway.logfiles.handler import LogFileHandler

    logger = logging.getLogger("test.managed")
    handler = LogFileHandler(tmp_path / "own.log", background=False)
    logger.addHandler(handler)
    exporter_file = RotatingFile(tmp_path / "out.jsonl", background=False)

    class Exporter:
        log_file = exporter_file

    try:
        found = managed_files([("file/a", Exporter()), ("otlp", object())], logger)
        assert [(m.owner, m.file) for m in found] == [
            ("logging", handler.file), ("exporter file/a", exporter_file)
        ]  # fmt: skip
    finally:
        logger.removeHandler(handler)
        handler.close()
