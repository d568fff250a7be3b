"""The audit trail's hash chain: one canonical JSON line per entry, each naming its predecessor.

An entry is a JSON object with exactly the fields ``seq``, ``time``, ``action``, ``actor``,
``details``, ``alg`` and ``prev``, encoded by orjson with sorted keys on one line. ``prev`` is
the link to the previous entry: the SHA-256 (``alg: "sha256"``) or HMAC-SHA256 with the trail's
key (``alg: "hmac-sha256"``) of the previous entry's line bytes (without the newline), as
lowercase hex. The first entry of a trail has ``seq`` 1 and ``prev`` :data:`GENESIS`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

GENESIS = "0" * 64
SHA256 = "sha256"
HMAC_SHA256 = "hmac-sha256"
ALGORITHMS = (SHA256, HMAC_SHA256)
FIELDS = frozenset({"seq", "time", "action", "actor", "details", "alg", "prev"})

#: Entries are bounded: details encoding to more than this are replaced by a summary.
MAX_DETAILS_BYTES = 64 * 1024
MAX_ACTOR_CHARS = 256

# Actions the gateway writes (docs/audit.md has the details of each).
AUDIT_START = "audit.start"
AUDIT_STOP = "audit.stop"
AUDIT_ROTATE = "audit.rotate"
AUDIT_RECOVER = "audit.recover"
AUDIT_PRUNE = "audit.prune"
AUTH_FAILURE = "auth.failure"
AUTH_FAILURE_SUPPRESSED = "auth.failure.suppressed"
AUTH_TOKEN_USE = "auth.token_use"
CONFIG_RELOAD = "config.reload"
ALERT_ACK = "alert.ack"
SILENCE_CREATE = "silence.create"
SILENCE_EXPIRE = "silence.expire"
ERROR_GROUP_STATUS = "error_group.status"

_ACTION = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_ENCODE_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


class EntryError(ValueError):
    """A line that is not a well-formed audit entry (the message says what is wrong)."""


@dataclass(frozen=True)
class Entry:
    """One parsed audit entry."""

    seq: int
    time: str
    action: str
    actor: str | None
    details: dict[str, Any]
    alg: str
    prev: str

    def as_dict(self) -> dict[str, Any]:
        """The entry as the JSON object it is written as."""
        return {
            "seq": self.seq, "time": self.time, "action": self.action, "actor": self.actor,
            "details": self.details, "alg": self.alg, "prev": self.prev,
        }  # fmt: skip


class Linker:
    """Computes links: SHA-256 of a line, or HMAC-SHA256 of it when a key is given."""

    def __init__(self, key: bytes | None = None) -> None:
        if key is not None and not key:
            raise ValueError("an HMAC key must not be empty")
        self._key = key

    @property
    def alg(self) -> str:
        """The algorithm this linker writes: ``hmac-sha256`` with a key, else ``sha256``."""
        return SHA256 if self._key is None else HMAC_SHA256

    @property
    def keyed(self) -> bool:
        """Whether this linker has a key (can compute and check HMAC links)."""
        return self._key is not None

    def link(self, line: bytes, alg: str | None = None) -> str:
        """The link to ``line`` with ``alg`` (default: this linker's); HMAC needs the key."""
        alg = alg or self.alg
        if alg == SHA256:
            return hashlib.sha256(line).hexdigest()
        if alg == HMAC_SHA256:
            if self._key is None:
                raise ValueError("an HMAC-SHA256 link needs the key")
            return hmac.new(self._key, line, hashlib.sha256).hexdigest()
        raise ValueError(f"unknown link algorithm {alg!r}")


def rfc3339(seconds: float) -> str:
    """``2024-05-01T12:00:00.123Z``: UTC, milliseconds."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def epoch_seconds(time: str) -> float | None:
    """The epoch seconds of an entry's ``time`` (RFC 3339); None when it is not one."""
    try:
        moment = datetime.fromisoformat(time)
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo is not None else None


def check_action(action: str) -> str:
    """``action`` if it is dotted lower case (``auth.failure``), else ValueError."""
    if not isinstance(action, str) or not _ACTION.fullmatch(action):
        raise ValueError(f"audit action {action!r} must be dotted lower case, e.g. auth.failure")
    return action


def bounded_details(details: dict[str, Any] | None) -> dict[str, Any]:
    """``details`` as JSON-ready data; too large, a summary naming its keys instead."""
    if not details:
        return {}
    data = orjson.loads(orjson.dumps(details, default=str, option=_ENCODE_OPTIONS))
    size = len(orjson.dumps(data))
    if size <= MAX_DETAILS_BYTES:
        return dict(data)
    keys = sorted(str(k) for k in data)[:50]
    return {"truncated": True, "bytes": size, "keys": keys}


def encode_entry(entry: Entry) -> bytes:
    """The canonical line of ``entry`` (sorted keys, compact, no newline)."""
    return orjson.dumps(entry.as_dict(), default=str, option=_ENCODE_OPTIONS)


def parse_entry(line: bytes) -> Entry:
    """The entry on ``line`` (without its newline); EntryError says what is wrong."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise EntryError(f"not JSON ({exc.args[0] if exc.args else exc})") from None
    if not isinstance(data, dict):
        raise EntryError("not a JSON object")
    if missing := sorted(FIELDS - data.keys()):
        raise EntryError(f"missing field(s) {', '.join(missing)}")
    if extra := sorted(data.keys() - FIELDS):
        raise EntryError(f"unexpected field(s) {', '.join(extra)}")
    seq, prev, alg = data["seq"], data["prev"], data["alg"]
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise EntryError(f"seq {seq!r} is not a positive integer")
    if not isinstance(prev, str) or not _HEX64.fullmatch(prev):
        raise EntryError("prev is not 64 lowercase hex digits")
    if alg not in ALGORITHMS:
        raise EntryError(f"alg {alg!r} is not one of {', '.join(ALGORITHMS)}")
    if not isinstance(data["action"], str) or not _ACTION.fullmatch(data["action"]):
        raise EntryError(f"action {data['action']!r} is not a dotted name")
    if not isinstance(data["time"], str):
        raise EntryError("time is not a string")
    if data["actor"] is not None and not isinstance(data["actor"], str):
        raise EntryError("actor is neither a string nor null")
    if not isinstance(data["details"], dict):
        raise EntryError("details is not an object")
    return Entry(
        seq=seq, time=data["time"], action=data["action"], actor=data["actor"],
        details=data["details"], alg=alg, prev=prev,
    )  # fmt: skip
