"""FileExporter: OTLP/JSON lines, rotation, error classification."""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path

import pytest

from exporters.file import FileExporter
from gateway.errors import PermanentError, RetryableError
from gateway.otlp.batch import Batch, Signal
from gateway.otlp.json_codec import decode_json, encode_json
from tests.support.otlp_samples import sample_request


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


async def test_rotation_keeps_max_backups(tmp_path: Path) -> None:
    path = tmp_path / "rot.jsonl"
    line_size = len(_lines_of(_batch(Signal.TRACES, 2)))
    limit_mb = (line_size * 3.5) / (1024 * 1024)  # three lines per file
    exporter = FileExporter(path, max_megabytes=limit_mb, max_backups=2)
    await exporter.start()
    try:
        for i in range(20):
            await exporter.push(_batch(Signal.TRACES, 2, service=f"svc-{i:02d}"))
    finally:
        await exporter.shutdown()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["rot.jsonl", "rot.jsonl.1", "rot.jsonl.2"]
    services = []
    for name in ["rot.jsonl.2", "rot.jsonl.1", "rot.jsonl"]:
        file = tmp_path / name
        assert file.stat().st_size <= limit_mb * 1024 * 1024
        for line in _lines(file):
            request = decode_json(Signal.TRACES, line)
            attrs = request.resource_spans[0].resource.attributes  # type: ignore[union-attr]
            services.append(attrs[0].value.string_value)
    # The newest batches survive, oldest first across the backups, none duplicated.
    assert services == [f"svc-{i:02d}" for i in range(20 - len(services), 20)]
    assert [len(_lines(tmp_path / n)) for n in names] == [2, 3, 3]


async def test_zero_backups_starts_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "only.jsonl"
    line_size = len(_lines_of(_batch(Signal.LOGS, 1)))
    exporter = FileExporter(path, max_megabytes=line_size * 2.5 / (1024 * 1024), max_backups=0)
    await exporter.start()
    try:
        for _ in range(7):
            await exporter.push(_batch(Signal.LOGS, 1))
    finally:
        await exporter.shutdown()
    assert [p.name for p in tmp_path.iterdir()] == ["only.jsonl"]
    assert len(_lines(path)) == 1  # 7 lines, two per file


async def test_a_line_bigger_than_the_limit_is_still_written(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    exporter = FileExporter(path, max_megabytes=0.0001, max_backups=1)
    await exporter.start()
    try:
        await exporter.push(_batch(Signal.METRICS, 20))
        await exporter.push(_batch(Signal.METRICS, 20))
    finally:
        await exporter.shutdown()
    assert len(_lines(path)) == 1 and len(_lines(tmp_path / "big.jsonl.1")) == 1


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

    monkeypatch.setattr(exporter, "_open", denied)
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
        real = exporter._file
        exporter._file = _DiskFull(real)  # type: ignore[assignment]
        with pytest.raises(RetryableError):
            await exporter.push(_batch(Signal.TRACES))
        exporter._file = real
        await exporter.push(_batch(Signal.TRACES))
    finally:
        await exporter.shutdown()
    lines = _lines(path)
    assert len(lines) == 2
    for line in lines:
        decode_json(Signal.TRACES, line)
