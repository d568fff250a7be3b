"""Writes batches as OTLP/JSON lines, one whole Export*ServiceRequest per line, with rotation.

The format is the Collector's file exporter's: each line can be decoded on its own with
:func:`gateway.otlp.json_codec.decode_json`. Encoding and writing run in a worker thread so the
event
loop never waits on the disk. Rotation is size based: when the next line would take the file
past ``max_megabytes``, ``path`` becomes ``path.1``, ``path.1`` becomes ``path.2`` and so on,
keeping ``max_backups`` old files.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
)

from exporters.base import ExporterBase
from exporters.settings import ExporterSettings
from gateway.config.values import StrictModel
from gateway.errors import PermanentError, RetryableError
from gateway.otlp.batch import Batch
from gateway.otlp.json_codec import encode_json
from gateway.registry import ALL_SIGNALS, ComponentFactory, Host


class FileExporter(ExporterBase):
    """Appends OTLP/JSON lines to ``path``. ``max_megabytes <= 0`` disables rotation;
    ``max_backups == 0`` discards the full file instead of keeping it."""

    def __init__(self, path: str | Path, max_megabytes: float = 100, max_backups: int = 5) -> None:
        if max_backups < 0:
            raise ValueError("max_backups must be >= 0")
        self.path = Path(path)
        self.max_bytes = int(max_megabytes * 1024 * 1024)
        self.max_backups = max_backups
        self._lock = threading.Lock()  # pushes may run in several worker threads at once
        self._file: io.FileIO | None = None
        self._size = 0

    def __repr__(self) -> str:
        return f"FileExporter({str(self.path)!r})"

    async def start(self) -> None:
        await asyncio.to_thread(self._guarded, self._open)

    async def push(self, batch: Batch) -> None:
        """Append the batch as one line; PermanentError on permission problems, else
        RetryableError for any OSError (a full disk can recover)."""
        await asyncio.to_thread(self._guarded, self._write, batch)

    async def shutdown(self) -> None:
        await asyncio.to_thread(self._close)

    # --- in the worker thread ----------------------------------------------------------------

    def _guarded(self, func: Callable[..., None], *args: object) -> None:
        try:
            with self._lock:
                func(*args)
        except PermissionError as exc:
            raise PermanentError(f"file exporter {self.path}: {exc}") from exc
        except OSError as exc:
            raise RetryableError(f"file exporter {self.path}: {exc}") from exc

    def _open(self) -> None:
        if self._file is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Unbuffered: every write goes straight to the OS, so "flushed" after each batch, and a
        # failed write can be cut back to the last whole line (see _write).
        handle = open(self.path, "ab", buffering=0)  # noqa: SIM115  (kept open across calls)
        self._file = handle
        self._size = os.fstat(handle.fileno()).st_size

    def _close(self) -> None:
        with self._lock:
            if self._file is not None:
                with contextlib.suppress(OSError):
                    self._file.close()
                self._file = None

    def _write(self, batch: Batch) -> None:
        line = encode_json(batch.request) + b"\n"
        if self._file is None:
            self._open()
        if self.max_bytes > 0 and self._size > 0 and self._size + len(line) > self.max_bytes:
            self._rotate()
            self._open()
        handle = self._file
        assert handle is not None
        start = self._size
        try:
            view = memoryview(line)
            while view:
                written = handle.write(view)
                if not written:
                    raise OSError(f"short write to {self.path}")
                view = view[written:]
        except OSError:
            # Drop a partial line so the retried batch does not leave a corrupt line behind.
            with contextlib.suppress(OSError):
                os.ftruncate(handle.fileno(), start)
            raise
        self._size = start + len(line)

    def _rotate(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.max_backups == 0:
            self.path.unlink(missing_ok=True)
            return
        oldest = self._backup(self.max_backups)
        oldest.unlink(missing_ok=True)
        for index in range(self.max_backups - 1, 0, -1):
            source = self._backup(index)
            if source.exists():
                source.replace(self._backup(index + 1))
        self.path.replace(self._backup(1))

    def _backup(self, index: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{index}")


class FileRotationSettings(StrictModel):
    """Rotate the file at ``max_megabytes``, keeping ``max_backups`` old files."""

    max_megabytes: int = Field(default=100, gt=0)
    max_backups: int = Field(default=5, ge=0)


class FileExporterConfig(ExporterSettings):
    """The ``file`` exporter: JSON lines, one OTLP request per line."""

    path: str = Field(min_length=1)
    rotation: FileRotationSettings = FileRotationSettings()
    format: Literal["json"] = "json"


def create_file(name: str, config: FileExporterConfig, host: Host) -> FileExporter:
    """The exporter of a ``file`` entry."""
    return FileExporter(
        config.path,
        max_megabytes=config.rotation.max_megabytes,
        max_backups=config.rotation.max_backups,
    )


FACTORY = ComponentFactory(
    kind="exporter",
    type_name="file",
    config=FileExporterConfig,
    signals=ALL_SIGNALS,
    create=create_file,
    example={"path": "otelgate-data/example.jsonl"},
)
