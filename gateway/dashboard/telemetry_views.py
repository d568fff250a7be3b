"""What the logs and traces pages (over the embedded telemetry store) share: filters, times,
severities, compact attributes, links.

``/ui/logs`` and its live tail ``/ui/logs/tail`` live in :mod:`.logs_page`; ``/ui/traces``
and ``/ui/traces/{trace_id}`` in :mod:`.trace_page`. Both read the store with the same
queries as the JSON API (:mod:`gateway.api.telemetry`): the store checks the full-text
syntax, ids and severities, and its ``ValueError`` becomes a 400 page saying why.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from gateway.config.values import parse_duration
from gateway.store.telemetry_records import StoredLog

STORE_OFF = (
    "The telemetry store is not open: it is still starting, or no pipeline sends logs and "
    "traces to the store exporter (store.enabled: false turns it off)."
)
#: What reading the store raises when it is closing (RuntimeError) or busy/broken (sqlite3):
#: a page says so (HTTP 503) instead of failing.
STORE_ERRORS = (RuntimeError, sqlite3.Error)


def store_failed(exc: BaseException) -> str:
    """The notice for a store that could not be read."""
    return f"The store could not be read just now ({exc}); this page retries on its own."


SINCE_CHOICES = (
    ("", "Any time"),
    ("5m", "Last 5 minutes"),
    ("15m", "Last 15 minutes"),
    ("1h", "Last hour"),
    ("6h", "Last 6 hours"),
    ("24h", "Last 24 hours"),
    ("168h", "Last 7 days"),
)
SEVERITY_CHOICES = ("trace", "debug", "info", "warn", "error", "fatal")
#: Severity number ranges (OpenTelemetry: 4 numbers per level) -> badge class and name.
_LEVELS = ((21, "fatal"), (17, "error"), (13, "warn"), (9, "info"), (5, "debug"), (1, "trace"))
_BADGE = {"trace": "debug", "debug": "debug", "info": "info", "warn": "warn", "error": "error",
          "fatal": "fatal"}  # fmt: skip
MAX_VALUE_CHARS = 200  # of one attribute value in a compact list
MAX_COMPACT_CHARS = 400  # of a record's compact attribute list


def blank(value: str | None) -> str | None:
    """A form field: None when empty (forms send every field, empty or not)."""
    value = value.strip() if value is not None else None
    return value or None


def parse_since(text: str | None, now: float | None = None) -> float | None:
    """Unix seconds from ``since``: a duration (``15m``: that long ago), an RFC 3339 time,
    or unix seconds. Raises ``ValueError`` saying what it accepts."""
    text = blank(text)
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise ValueError(f"since {text!r} is not a time")
        return seconds
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        pass
    else:
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    try:
        ago = parse_duration(text)
    except ValueError:
        raise ValueError(
            f"since {text!r} is not a time: use a duration (15m, 1h, 24h), an RFC 3339 time "
            "(2025-01-31T12:00:00Z) or unix seconds"
        ) from None
    return (time.time() if now is None else now) - ago


def since_choices(current: str | None) -> list[tuple[str, str]]:
    """The ``since`` options, with the current value added when it is not one of them."""
    choices = list(SINCE_CHOICES)
    if current and current not in dict(choices):
        choices.append((current, f"Since {current}"))
    return choices


def severity_name(number: int) -> str:
    """``error`` for 17-20 and so on; ``""`` for 0 (unknown)."""
    return next((name for low, name in _LEVELS if number >= low), "")


def severity_badge(number: int, text: str = "") -> tuple[str, str]:
    """(badge class, label) of a severity number and the record's severity text."""
    name = severity_name(number)
    return _BADGE.get(name, ""), text or name.upper() or "—"


def show(value: Any) -> str:
    """An attribute value as text: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def compact(attributes: dict[str, Any]) -> str:
    """``key=value key=value``, each value and the whole cut short with ``…``."""
    parts = []
    for key, value in attributes.items():
        text = show(value)
        if len(text) > MAX_VALUE_CHARS:
            text = text[: MAX_VALUE_CHARS - 1] + "…"
        parts.append(f"{key}={text}")
    joined = " ".join(parts)
    return joined if len(joined) <= MAX_COMPACT_CHARS else joined[: MAX_COMPACT_CHARS - 1] + "…"


def nano_time(unix_nano: int) -> str:
    """``YYYY-MM-DD HH:MM:SS.mmm`` UTC."""
    moment = datetime.fromtimestamp(unix_nano / 1e9, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def iso_time(unix_nano: int) -> str:
    """RFC 3339 UTC with microseconds."""
    return datetime.fromtimestamp(unix_nano / 1e9, UTC).isoformat().replace("+00:00", "Z")


def log_row(log: StoredLog) -> dict[str, Any]:
    """What a page row and a live-tail event show of a log record (JSON-able)."""
    badge, label = severity_badge(log.severity_number, log.severity_text)
    return {
        "id": log.id,
        "time": iso_time(log.time_unix_nano),
        "time_text": nano_time(log.time_unix_nano),
        "severity": label,
        "severity_number": log.severity_number,
        "severity_class": badge,
        "service": log.service,
        "body": log.body,
        "trace_id": log.trace_id,
        "span_id": log.span_id,
        "attributes": compact(log.attributes),
    }


def link(path: str, **params: str | None) -> str:
    """``path?a=1&b=2`` with the parameters that are not empty."""
    kept = {k: v for k, v in params.items() if v}
    return f"{path}?{urlencode(kept)}" if kept else path
