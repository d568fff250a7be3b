"""FileExporter: OTLP/JSON lines, rotation, error classification.

Rotated files are named ``<path>.<UTC time>[-n][.gz]`` (gateway.logfiles.naming); before the
rotation rework they were ``<path>.1``, ``<path>.2``: these tests read them in order with
tests.support.rotated_files."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from pathlib import Path

import pytest

from exporters.file import FileExporter, FileExporterConfig, create_file
from gateway.errors import PermanentError, RetryableError
from gateway.logfiles import status
from gateway.logfiles.config import MIB, RotationConfig
from gateway.logfiles.naming import rotated_files
from gateway.otlp.batch import Batch, Signal
from gateway.otlp.json_codec import decode_json, encode_json
from tests.support.otlp_samples import sample_request
from tests.support.rotated_files import all_files, all_lines, read_bytes


@pytest.fixture(autouse=True)
def roomy_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The statuses asserted here must not depend on the test machine's free space."""
    gib = 1024**3
    monkeypatch.setattr(status, "disk_usage", lambda path: (100 * gib, 50 * gib, 50 * gib))


def _batch(signal: Signal, items: int = 3, service: str = "checkout") -> Batch:
    return Batch.from_request(signal, sample_request(signal, items, service=service))


def _lines_of(batch: Batch) -> bytes:
    return encode_json(batch.request) + b"\n"


def _lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return data.splitlines()


async def test_lines_decode_back_to_the_requests_and_dirs_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "otlp.jsonl"
    exporter = FileExporter(path)
    await exporter.start()
    batches = [_batch(signal, 4) for signal in Signal]
    try:
        for batch in batches:
            await exporter.push(batch)
            # Flushed after every batch: visible before shutdown.
            assert len(_lines(path)) == batches.index(batch) + 1
    finally:
        await exporter.shutdown()
    lines = _lines(path)
    assert [decode_json(b.signal, line) for b, line in zip(batches, lines, strict=True)] == [
        b.request for b in batches
    ]
    assert lines[0].startswith(b'{"resourceSpans":')


async def test_appends_to_an_existing_file_and_reopens_after_shutdown(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    for _ in range(2):
        exporter = FileExporter(path)
        await exporter.start()
        await exporter.push(_batch(Signal.LOGS))
        await exporter.shutdown()
    await exporter.push(_batch(Signal.LOGS))  # reopens lazily
    await exporter.shutdown()
    assert len(_lines(path)) == 3


def _by_size(max_size: float, max_files: int | None) -> RotationConfig:
    return RotationConfig(max_size=int(max_size), daily_at=None, max_files=max_files)


async def test_rotation_keeps_max_files(tmp_path: Path) -> None:
    path = tmp_path / "rot.jsonl"
    line_size = len(_lines_of(_batch(Signal.TRACES, 2)))
    limit = line_size * 3.5  # three lines per file
    exporter = FileExporter(path, _by_size(limit, 2))
    await exporter.start()
    try:
        for i in range(20):
            await exporter.push(_batch(Signal.TRACES, 2, service=f"svc-{i:02d}"))
    finally:
        await exporter.shutdown()
    files = all_files(path)
    assert len(files) == 3 and files[-1] == path
    services = []
    for file in files:
        assert len(read_bytes(file)) <= limit
    for line in all_lines(path):
        request = decode_json(Signal.TRACES, line)
        attrs = request.resource_spans[0].resource.attributes  # type: ignore[union-attr]
        services.append(attrs[0].value.string_value)
    # The newest batches survive, oldest first across the rotated files, none duplicated.
    assert services == [f"svc-{i:02d}" for i in range(20 - len(services), 20)]
    assert [len(read_bytes(f).splitlines()) for f in files] == [3, 3, 2]


async def test_zero_max_files_keeps_only_the_active_file(tmp_path: Path) -> None:
    path = tmp_path / "only.jsonl"
    line_size = len(_lines_of(_batch(Signal.LOGS, 1)))
    exporter = FileExporter(path, _by_size(line_size * 2.5, 0))
    await exporter.start()
    try:
        for _ in range(7):
            await exporter.push(_batch(Signal.LOGS, 1))
    finally:
        await exporter.shutdown()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".only.jsonl.lock", "only.jsonl"]
    assert len(_lines(path)) == 1  # 7 lines, two per file


async def test_a_line_bigger_than_the_limit_is_still_written(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    exporter = FileExporter(path, _by_size(100, 1))
    await exporter.start()
    try:
        await exporter.push(_batch(Signal.METRICS, 20))
        await exporter.push(_batch(Signal.METRICS, 20))
    finally:
        await exporter.shutdown()
    [rotated] = rotated_files(path)
    assert len(_lines(path)) == 1 and len(read_bytes(rotated.path).splitlines()) == 1


def _rotation(tmp_path: Path, **keys: object) -> RotationConfig:
    config = FileExporterConfig.model_validate({"path": str(tmp_path / "x"), "rotation": keys})
    return config.rotation.effective()


def test_deprecated_rotation_keys_alone_keep_the_old_behaviour(tmp_path: Path) -> None:
    rotation = _rotation(tmp_path, max_megabytes=5, max_backups=3)
    assert (rotation.max_size, rotation.max_files) == (5 * MIB, 3)
    assert rotation.daily_at is None and rotation.max_age is None  # size only, no age limit
    assert rotation.compress  # the one change: rotated files are gzipped
    # The other key keeps its old default (100 MiB, 5 files).
    assert _rotation(tmp_path, max_megabytes=5).max_files == 5
    assert _rotation(tmp_path, max_backups=2).max_size == 100 * MIB
    # With a new key beside them, the new defaults apply to the keys not given.
    mixed = _rotation(tmp_path, max_megabytes=5, max_age="7d")
    assert (mixed.max_size, mixed.daily_at, mixed.max_files) == (5 * MIB, "00:00", 30)
    default = create_file("file", FileExporterConfig(path=str(tmp_path / "y")), None)  # type: ignore[arg-type]
    assert default.log_file.config == RotationConfig()
    assert default.log_file.config.max_size == 100 * MIB


def test_deprecated_keys_are_warned_about_once_at_creation(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = FileExporterConfig.model_validate(
        {"path": str(tmp_path / "x"), "rotation": {"max_megabytes": 5, "max_backups": 3}}
    )
    with caplog.at_level(logging.WARNING, logger="otelgate.exporter"):
        create_file("file/old", config, None)  # type: ignore[arg-type]
        create_file("file/new", FileExporterConfig(path=str(tmp_path / "y")), None)  # type: ignore[arg-type]
    [record] = caplog.records
    message = record.getMessage()
    assert "exporters.file/old.rotation.max_megabytes" in message and "max_size" in message
    assert "exporters.file/old.rotation.max_backups" in message and "max_files" in message


async def test_concurrent_pushes_write_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl"
    exporter = FileExporter(path)
    await exporter.start()
    try:
        await asyncio.gather(*(exporter.push(_batch(Signal.LOGS, 10)) for _ in range(20)))
        lines_request = _batch(Signal.LOGS, 10).request
    finally:
        await exporter.shutdown()
    lines = _lines(path)
    assert len(lines) == 20
    assert all(decode_json(Signal.LOGS, line) == lines_request for line in lines)


async def test_directory_in_the_way_is_retryable(tmp_path: Path) -> None:
    path = tmp_path / "taken"
    path.mkdir()
    exporter = FileExporter(path)
    with pytest.raises(RetryableError):
        await exporter.start()


async def test_permission_error_is_permanent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = FileExporter(tmp_path / "x.jsonl")

    def denied() -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(exporter.log_file, "write", lambda line: denied())
    with pytest.raises(PermanentError):
        await exporter.push(_batch(Signal.TRACES))


class _DiskFull:
    """Writes half of what it is given to the real file, then fails like ENOSPC."""

    def __init__(self, real: object) -> None:
        self.real = real

    def write(self, data: memoryview) -> int:
        os.write(self.fileno(), bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    def fileno(self) -> int:
        return self.real.fileno()  # type: ignore[attr-defined]

    def close(self) -> None:
        self.real.close()  # type: ignore[attr-defined]


async def test_disk_full_is_retryable_and_leaves_no_partial_line(tmp_path: Path) -> None:
    path = tmp_path / "full.jsonl"
    exporter = FileExporter(path)
    await exporter.start()
    try:
        await exporter.push(_batch(Signal.TRACES))
        real = exporter.log_file._file
        exporter.log_file._file = _DiskFull(real)  # type: ignore[assignment]
        with pytest.raises(RetryableError):
            await exporter.push(_batch(Signal.TRACES))
        assert exporter.log_file.status().level == "critical"  # writes fail
        exporter.log_file._file = real
        await exporter.push(_batch(Signal.TRACES))
    finally:
        await exporter.shutdown()
    assert exporter.log_file.status().level == "healthy"  # the next write worked
    lines = _lines(path)
    assert len(lines) == 2
    for line in lines:
        decode_json(Signal.TRACES, line)
