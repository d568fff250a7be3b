"""Times in admin API queries: RFC 3339 or unix seconds (pydantic parses both)."""

from __future__ import annotations

from datetime import UTC, datetime


def epoch(moment: datetime) -> float:
    """Seconds since the epoch; a time without a zone is UTC (not the server's local time)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def optional_epoch(moment: datetime | None) -> float | None:
    """:func:`epoch`, or None."""
    return None if moment is None else epoch(moment)
