"""Configuration of the audit trail (``audit:``), docs/audit.md.

Off unless asked for: ``audit: {path: ...}`` (or ``enabled: true``, which writes to
``<OTELGATE_DATA_DIR or ./otelgate-data>/audit/audit.jsonl``). A gateway run with no
configuration writes no audit file.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator, model_validator

from gateway.config.values import Duration, StrictModel
from gateway.security.auth_config import reading_secrets

log = logging.getLogger("otelgate.audit")

MIN_KEY_BYTES = 16
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}


def parse_size(value: object) -> int:
    """Bytes from a number or ``"100MiB"``, ``"512KiB"``, ``"1GB"`` (``KiB``: 1024 bytes)."""
    problem = f"invalid size {value!r} (use bytes, or e.g. 512KiB, 100MiB, 1GiB)"
    if isinstance(value, bool):
        raise ValueError(problem)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, str) or (match := _SIZE.fullmatch(value)) is None:
        raise ValueError(problem)
    unit = (match[2] or "").lower()
    factor = 1024 ** "kmgt".index(unit[0]) * 1024 if "i" in unit else _UNITS[unit[:1]]
    return int(float(match[1]) * factor)


Size = Annotated[int, BeforeValidator(parse_size)]


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
    ``max_files`` keeps that many rotated files (the oldest are removed, and the removal is
    itself recorded); by default every file is kept. ``sync_interval`` is how often written
    entries are fsynced (0: after every entry, on the caller's thread).
    """

    enabled: bool = False
    path: str | None = Field(default=None, min_length=1)
    hmac_key_file: str | None = Field(default=None, min_length=1)
    max_size: Size = Field(default=100 * 1024 * 1024, ge=4096)
    max_files: int | None = Field(default=None, ge=1)
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
