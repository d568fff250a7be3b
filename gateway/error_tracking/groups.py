"""Error groups: what one bug looks like after every occurrence of it was counted.

A group keeps counts, first/last seen, the services, versions and environments it hit, its
status (``unresolved``, ``resolved``, ``ignored``) and regressions. ``count`` is the number of
requests the bug hit: the same exception reported twice within one trace (as a span event
and again as an error log line of that request) counts once; ``events`` counts every report.
"""

from __future__ import annotations

import functools
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from packaging.version import InvalidVersion, Version

Status = Literal["unresolved", "resolved", "ignored"]
STATUSES: tuple[Status, ...] = ("unresolved", "resolved", "ignored")
MAX_VALUES = 50  # services, versions and environments kept per group (the most recent)
RECENT_MINUTES = 60  # per-minute counts kept in memory for the dashboard's sparklines


@dataclass(slots=True)
class Sample:
    """One occurrence kept in full: where, when, in which request, with its stack."""

    group_id: str
    time: float
    trace_id: str | None
    span_id: str | None
    service: str
    version: str | None
    environment: str | None
    source: str  # span | log
    message: str  # as reported
    stacktrace: str
    attributes: dict[str, str]
    id: int = field(default_factory=lambda: secrets.randbits(62))  # rewritten when completed


@dataclass(slots=True)
class FrameInfo:
    """A frame that went into the fingerprint (no line: lines do not group)."""

    file: str
    function: str
    module: str | None
    line: int | None = None


@dataclass(slots=True)
class ErrorGroup:
    """Every occurrence of one fingerprint."""

    id: str
    type: str
    message: str  # normalised
    culprit: str
    language: str
    basis: str  # stack | message
    frames: list[FrameInfo]
    first_seen: float
    last_seen: float
    count: int = 0
    events: int = 0
    services: dict[str, float] = field(default_factory=dict)  # name -> last seen
    versions: dict[str, float] = field(default_factory=dict)
    environments: dict[str, float] = field(default_factory=dict)
    status: Status = "unresolved"
    status_changed_at: float | None = None
    status_changed_by: str | None = None
    resolved_versions: list[str] = field(default_factory=list)
    regressed_at: float | None = None
    regressions: int = 0
    samples_taken: int = 0  # samples written so far (at most samples_per_group are kept)
    last_sample_at: float = 0.0
    #: [minute, count] of the last RECENT_MINUTES minutes with occurrences (memory only).
    recent: deque[list[int]] = field(default_factory=lambda: deque(maxlen=RECENT_MINUTES))

    def counted(self, at: float) -> None:
        """Note one counted occurrence (a request hit) at ``at`` in its minute."""
        minute = int(at // 60)
        if self.recent and self.recent[-1][0] == minute:
            self.recent[-1][1] += 1
        else:
            self.recent.append([minute, 1])

    def per_minute(self, now: float, minutes: int = 30) -> list[int]:
        """Counted occurrences in each of the last ``minutes`` minutes, oldest first (0 before
        the gateway started, or without occurrences)."""
        last = int(now // 60)
        counts = dict((m, c) for m, c in self.recent if m > last - minutes)
        return [counts.get(m, 0) for m in range(last - minutes + 1, last + 1)]

    def note(self, seen: dict[str, float], value: str | None, at: float) -> None:
        """Remember ``value`` in ``seen`` (bounded: the least recent is forgotten)."""
        if value is None:
            return
        if value not in seen and len(seen) >= MAX_VALUES:
            del seen[min(seen, key=seen.__getitem__)]
        seen[value] = max(at, seen.get(value, at))

    def resolve(self, at: float, by: str | None) -> None:
        """Mark resolved, remembering the versions seen so far (a newer one regresses)."""
        self.status = "resolved"
        self.resolved_versions = sorted(self.versions)
        self.status_changed_at, self.status_changed_by = at, by

    def set_status(self, status: Status, at: float, by: str | None) -> None:
        """``unresolved``, ``resolved`` or ``ignored``, set by an operator."""
        if status == "resolved":
            self.resolve(at, by)
            return
        self.status = status
        self.resolved_versions = []
        self.status_changed_at, self.status_changed_by = at, by

    def regresses(self, version: str | None) -> bool:
        """Whether an occurrence from ``version`` reopens this resolved group: it does when it
        comes from a version newer than every version seen before the group was resolved,
        or when versions cannot tell (no version on either side)."""
        if self.status != "resolved":
            return False
        if version is None or not self.resolved_versions:
            return True
        if version in self.resolved_versions:
            return False
        return is_newer(version, self.resolved_versions)


def is_newer(version: str, than: list[str]) -> bool:
    """Whether ``version`` is newer than all of ``than`` (PEP 440 / semver-like when they parse;
    a version that does not parse counts as newer: new code we cannot order)."""
    candidate = _parsed(version)
    known = [_parsed(v) for v in than]
    if candidate is None or None in known:
        return True
    return all(candidate > v for v in known if v is not None)


@functools.lru_cache(maxsize=1024)
def _parsed(version: str) -> Version | None:
    """A version, parsed once (every occurrence of a resolved group asks)."""
    try:
        return Version(version)
    except InvalidVersion:
        return None
