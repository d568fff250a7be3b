"""Silences: label matchers and a time range; a silenced alert still fires (and shows in the
API as silenced) but is not notified. Alertmanager's model."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway.alerting.matchers import Matcher, matches_all


@dataclass(frozen=True, slots=True)
class Silence:
    """One silence (times: wall clock seconds)."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    created_at: float

    def active(self, now: float) -> bool:
        """Whether it silences at ``now``."""
        return self.starts_at <= now < self.ends_at

    def state(self, now: float) -> str:
        """``pending``, ``active`` or ``expired`` (Alertmanager's words)."""
        if now < self.starts_at:
            return "pending"
        return "active" if now < self.ends_at else "expired"


class Silences:
    """The known silences."""

    def __init__(self, silences: Iterable[Silence] = ()) -> None:
        self.by_id = {s.id: s for s in silences}

    def add(self, silence: Silence) -> None:
        """Add or replace a silence."""
        self.by_id[silence.id] = silence

    def expire(self, silence_id: str, now: float) -> Silence:
        """End a silence now (``KeyError`` if unknown). An expired one stays listed."""
        old = self.by_id[silence_id]
        ended = Silence(
            old.id,
            old.matchers,
            min(old.starts_at, now),
            min(old.ends_at, now),
            old.created_by,
            old.comment,
            old.created_at,
        )
        self.by_id[silence_id] = ended
        return ended

    def silencing(self, labels: Mapping[str, str], now: float) -> list[str]:
        """The ids of the active silences that match ``labels``."""
        return [
            s.id for s in self.by_id.values() if s.active(now) and matches_all(s.matchers, labels)
        ]

    def forget_before(self, when: float) -> list[str]:
        """Drop silences that ended before ``when``; their ids."""
        gone = [i for i, s in self.by_id.items() if s.ends_at < when]
        for silence_id in gone:
            del self.by_id[silence_id]
        return gone


def new_silence_id() -> str:
    """A fresh silence id."""
    return secrets.token_hex(8)
