"""Writes batches as OTLP/JSON lines, one whole Export*ServiceRequest per line, with rotation.

The format is the Collector's file exporter's: each line can be decoded on its own with
:func:`gateway.otlp.json_codec.decode_json`. Encoding and writing run in a worker thread so the
event loop never waits on the disk. ``rotation`` (:mod:`gateway.logfiles`, docs/log-files.md):
by default a new file at 100 MiB and daily at 00:00 UTC, rotated files named
``<path>.<UTC time>-<nnn>.gz``, removed after 30 days or beyond the newest 30.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from exporters.base import ExporterBase
from exporters.settings import ExporterSettings
from gateway.errors import PermanentError, RetryableError
from gateway.logfiles.config import MIB, RotationConfig
from gateway.logfiles.writer import RotatingFile
from gateway.otlp.batch import Batch
from gateway.otlp.json_codec import encode_json
from gateway.registry import ALL_SIGNALS, ComponentFactory, Host

log = logging.getLogger("otelgate.exporter")


class FileExporter(ExporterBase):
    """Appends OTLP/JSON lines to ``path``, rotated, gzipped and kept as ``rotation`` says."""

    def __init__(
        self,
        path: str | Path,
        rotation: RotationConfig | None = None,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        #: The rotating file (found by the gateway for /health and the metrics).
        self.log_file = RotatingFile(self.path, rotation, now=now)

    def __repr__(self) -> str:
        return f"FileExporter({str(self.path)!r})"

    async def start(self) -> None:
        await asyncio.to_thread(self._guarded, self.log_file.open)

    async def push(self, batch: Batch) -> None:
        """Append the batch as one line; PermanentError on permission problems, else
        RetryableError for any OSError (a full disk can recover)."""
        await asyncio.to_thread(self._guarded, self._write, batch)

    async def shutdown(self) -> None:
        await asyncio.to_thread(self.log_file.close)

    # --- in a worker thread (the file is thread safe: pushes may run in several at once) ----

    def _guarded(self, func: Callable[..., None], *args: object) -> None:
        try:
            func(*args)
        except PermissionError as exc:
            raise PermanentError(f"file exporter {self.path}: {exc}") from exc
        except OSError as exc:
            raise RetryableError(f"file exporter {self.path}: {exc}") from exc

    def _write(self, batch: Batch) -> None:
        self.log_file.write(encode_json(batch.request) + b"\n")


DEPRECATED = {"max_megabytes": "max_size", "max_backups": "max_files"}
_OLD_DEFAULTS = {"max_megabytes": 100, "max_backups": 5}  # the defaults of earlier versions


class FileRotationSettings(RotationConfig):
    """:class:`RotationConfig`, plus the keys of earlier versions (deprecated):
    ``max_megabytes`` sets ``max_size`` in MiB, ``max_backups`` sets ``max_files``.

    Given alone (no new key beside them), they keep the old behaviour: rotation by size
    only, no age limit, the old default (100 MiB, 5 files) for the one not given; only
    ``compress`` is new (rotated files are gzipped). With a new key, the new defaults
    apply to the keys not given.
    """

    max_megabytes: int | None = Field(default=None, gt=0)
    max_backups: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _deprecated_keys(self) -> FileRotationSettings:
        for old, new in DEPRECATED.items():
            if getattr(self, old) is not None and new in self.model_fields_set:
                raise ValueError(f"{old} (deprecated) and {new} are both set: keep {new}")
        if not self.deprecated_keys():
            return self
        megabytes, backups = self.max_megabytes, self.max_backups
        if not self.model_fields_set & set(RotationConfig.model_fields):  # the old keys alone
            self.daily_at = None
            self.max_age = None
            megabytes = megabytes or _OLD_DEFAULTS["max_megabytes"]
            backups = _OLD_DEFAULTS["max_backups"] if backups is None else backups
        if megabytes is not None:
            self.max_size = megabytes * MIB
        if backups is not None:
            self.max_files = backups
        return self

    def deprecated_keys(self) -> list[str]:
        """The deprecated keys the configuration gives."""
        return [old for old in DEPRECATED if getattr(self, old) is not None]

    def effective(self) -> RotationConfig:
        """The rotation settings with the deprecated keys applied."""
        return RotationConfig.model_validate(
            self.model_dump(exclude={"max_megabytes", "max_backups"})
        )


class FileExporterConfig(ExporterSettings):
    """The ``file`` exporter: JSON lines, one OTLP request per line."""

    path: str = Field(min_length=1)
    rotation: FileRotationSettings = FileRotationSettings()
    format: Literal["json"] = "json"


def create_file(name: str, config: FileExporterConfig, host: Host) -> FileExporter:
    """The exporter of a ``file`` entry (one warning when it uses deprecated keys)."""
    if old := config.rotation.deprecated_keys():
        keys = ", ".join(f"exporters.{name}.rotation.{k} (use {DEPRECATED[k]})" for k in old)
        log.warning(
            "deprecated: %s. Alone they keep the old rotation (by size only, no age limit), "
            "and rotated files are now gzipped; see docs/log-files.md",
            keys,
        )
    return FileExporter(config.path, config.rotation.effective())


FACTORY = ComponentFactory(
    kind="exporter",
    type_name="file",
    config=FileExporterConfig,
    signals=ALL_SIGNALS,
    create=create_file,
    example={"path": "otelgate-data/example.jsonl"},
)
