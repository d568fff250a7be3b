"""Per-minute aggregation of frequent audit events (token use, authentication failures).

Token use becomes one ``auth.token_use`` entry per name per minute. Authentication failures
are written one by one up to a per-minute cap; past it they are counted and summarised in one
``auth.failure.suppressed`` entry for that minute, so a flood of bad credentials costs a
bounded number of entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.audit.chain import AUTH_FAILURE_SUPPRESSED, AUTH_TOKEN_USE, rfc3339

MAX_SAMPLE_PEERS = 10
MAX_REASONS = 50


@dataclass
class _TokenUse:
    requests: int = 0
    items: int = 0


@dataclass
class _Failures:
    written: int = 0
    suppressed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    peers: list[str] = field(default_factory=list)


PendingEntry = tuple[str, str | None, dict[str, Any]]


class MinuteAggregator:
    """Counts per minute (``int(unix seconds // 60)``); :meth:`due` turns them into entries."""

    def __init__(self, failures_per_minute: int) -> None:
        self.failures_per_minute = failures_per_minute
        self._tokens: dict[tuple[int, str], _TokenUse] = {}
        self._failures: dict[int, _Failures] = {}

    def token_use(self, minute: int, name: str, requests: int, items: int) -> None:
        """Add ``requests`` and ``items`` to ``name``'s use in ``minute``."""
        use = self._tokens.setdefault((minute, name), _TokenUse())
        use.requests += requests
        use.items += items

    def auth_failure(self, minute: int, reason: str, peer: str | None) -> bool:
        """Count a failure; True when it is to be written now (under the cap)."""
        failures = self._failures.setdefault(minute, _Failures())
        if failures.written < self.failures_per_minute:
            failures.written += 1
            return True
        failures.suppressed += 1
        if reason in failures.reasons or len(failures.reasons) < MAX_REASONS:
            failures.reasons[reason] = failures.reasons.get(reason, 0) + 1
        else:
            failures.reasons["(other)"] = failures.reasons.get("(other)", 0) + 1
        if peer and peer not in failures.peers and len(failures.peers) < MAX_SAMPLE_PEERS:
            failures.peers.append(peer)
        return False

    def due(self, current_minute: int | None) -> list[PendingEntry]:
        """Entries for the minutes before ``current_minute`` (all minutes when None)."""
        out: list[PendingEntry] = []
        done = sorted(
            {m for m, _ in self._tokens} | set(self._failures),
        )
        for minute in done:
            if current_minute is not None and minute >= current_minute:
                break
            start = rfc3339(minute * 60.0)
            for key in sorted(k for k in self._tokens if k[0] == minute):
                use = self._tokens.pop(key)
                details = {"minute": start, "requests": use.requests, "items": use.items}
                out.append((AUTH_TOKEN_USE, key[1], details))
            failures = self._failures.pop(minute, None)
            if failures is not None and failures.suppressed:
                summary = {
                    "minute": start, "suppressed": failures.suppressed,
                    "written": failures.written, "reasons": failures.reasons,
                    "sample_peers": failures.peers,
                }  # fmt: skip
                out.append((AUTH_FAILURE_SUPPRESSED, None, summary))
        return out

    @property
    def pending(self) -> bool:
        """Whether anything is waiting to be written."""
        return bool(self._tokens) or any(f.suppressed for f in self._failures.values())
