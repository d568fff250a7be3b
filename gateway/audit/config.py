"""Configuration of the audit trail (``audit:``), docs/audit.md.

Off unless asked for: ``audit: {path: ...}`` (or ``enabled: true``, which writes to
``<OTELGATE_DATA_DIR or ./otelgate-data>/audit/audit.jsonl``). A gateway run with no
configuration writes no audit file.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from gateway.config.values import Duration, Size, StrictModel, Window
from gateway.config.values import parse_size as parse_size  # its old home; kept importable
from gateway.logfiles.config import DailyAt, FreeSpaceThresholds
from gateway.security.auth_config import reading_secrets

log = logging.getLogger("otelgate.audit")

MIN_KEY_BYTES = 16


def default_audit_path(environ: Mapping[str, str] | None = None) -> Path:
    """``<OTELGATE_DATA_DIR or ./otelgate-data>/audit/audit.jsonl``."""
    env = os.environ if environ is None else environ
    return Path(env.get("OTELGATE_DATA_DIR") or "./otelgate-data") / "audit" / "audit.jsonl"


def load_key(path: str | Path, *, warn: bool = True) -> bytes:
    """The HMAC key in ``path`` (a trailing newline is not part of it); ValueError if unusable.

    Messages name the file, never its content. A key file others can read is allowed (secret
    mounts are often 0644) but logged as a warning.
    """
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"hmac_key_file {path} is not a regular file")
        with open(path, "rb") as fh:
            key = fh.read(64 * 1024 + 1)
    except OSError as exc:
        raise ValueError(f"hmac_key_file {path}: {exc.strerror or exc}") from None
    key = key.rstrip(b"\r\n")
    if len(key) > 64 * 1024:
        raise ValueError(f"hmac_key_file {path} is over 64 KiB: is it the right file?")
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(
            f"hmac_key_file {path} holds {len(key)} bytes; use at least {MIN_KEY_BYTES} "
            "random bytes (e.g. `head -c 32 /dev/urandom | base64 > audit.key`)"
        )
    if warn and info.st_mode & (stat.S_IRGRP | stat.S_IROTH):
        log.warning(
            "audit hmac_key_file %s is readable by group or others (mode %o): anyone who can "
            "read it can forge the audit trail; chmod 600 it",
            path, stat.S_IMODE(info.st_mode),
        )  # fmt: skip
    return key


class AuditConfig(StrictModel):
    """The tamper-evident audit trail (docs/audit.md).

    ``enabled`` defaults to on when ``path`` or ``hmac_key_file`` is given, off otherwise.
    The active file rotates past ``max_size`` and daily at ``daily_at`` (UTC; null: not
    daily); rotated files are gzipped (``compress``). ``max_files`` keeps that many rotated
    files and ``max_age`` removes those whose newest entry is older than it (each removal is
    itself recorded); by default every file is kept. Retention and compression run at each
    rotation and every ``check_interval``. ``sync_interval`` is how often written entries are
    fsynced (0: after every entry, on the caller's thread).
    """

    enabled: bool = False
    path: str | None = Field(default=None, min_length=1)
    hmac_key_file: str | None = Field(default=None, min_length=1)
    max_size: Size = Field(default=100 * 1024 * 1024, ge=4096)
    max_files: int | None = Field(default=None, ge=1)
    daily_at: DailyAt = "00:00"
    compress: bool = True
    max_age: Window | None = Field(default=None, gt=0)
    check_interval: Duration = Field(default=60.0, gt=0)
    free_space: FreeSpaceThresholds = FreeSpaceThresholds()
    auth_failures_per_minute: int = Field(default=60, ge=0)
    sync_interval: Duration = Field(default=1.0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _enabled_by_path(cls, data: Any) -> Any:
        if isinstance(data, dict) and "enabled" not in data:
            given = data.get("path") is not None or data.get("hmac_key_file") is not None
            return {**data, "enabled": given}
        return data

    @field_validator("hmac_key_file")
    @classmethod
    def _usable_key(cls, value: str | None) -> str | None:
        if value is not None and reading_secrets():
            load_key(value, warn=False)  # warned about when the trail opens
        return value

    def resolved_path(self, environ: Mapping[str, str] | None = None) -> Path:
        """``path``, or the default under the data directory."""
        return Path(self.path) if self.path else default_audit_path(environ)

    def key(self) -> bytes | None:
        """The HMAC key (read now), or None without ``hmac_key_file``."""
        return None if self.hmac_key_file is None else load_key(self.hmac_key_file)
