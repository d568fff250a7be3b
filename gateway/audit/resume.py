"""Where an audit trail goes on when it is opened: after the last good entry on disk.

A file that ends cleanly is appended to. A file whose end is damaged (a crash in the middle
of a write, or an edit) is never silently continued: it is kept as it is (moved aside when it
is the active file) and a new file starts with an ``audit.recover`` entry that links to its
last good entry and says how many bytes follow it, so ``otelgate audit verify`` can tell an
acknowledged break from a hidden one.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.audit.chain import (
    AUDIT_RECOVER,
    AUDIT_ROTATE,
    HMAC_SHA256,
    Entry,
    EntryError,
    Linker,
    epoch_seconds,
)
from gateway.audit.files import (
    Tail,
    fsync_directory,
    read_first_entry,
    read_tail,
    rotated_files,
    rotated_name,
)

log = logging.getLogger("otelgate.audit")


class AuditError(Exception):
    """The trail cannot be opened or resumed without breaking its chain."""


@dataclass(frozen=True)
class Resume:
    """Continue after ``last`` (None: a new trail), in the active file or a new one.

    ``first_entry`` is the action and details a new active file starts with (None: append to
    the existing active file, whose first entry has ``first_seq`` and was written at
    ``started``, epoch seconds: its day decides the next daily rotation).
    """

    last: Entry | None = None
    last_line: bytes = b""
    first_seq: int | None = None
    first_entry: tuple[str, dict[str, Any]] | None = field(default=None)
    started: float | None = None


def plan_resume(active: Path, linker: Linker) -> Resume:
    """How to resume the trail whose active file is ``active`` (may move it aside).

    AuditError when no good entry is found at the end, or the trail needs another key.
    """
    if active.exists() and active.stat().st_size > 0:
        tail, last = readable_tail(active, linker)
        if tail.problem is None:
            try:
                first = read_first_entry(active)
            except EntryError as exc:
                log.error("audit trail %s: its first entry is unreadable: %s", active, exc)
                first = None
            if first is None:
                return Resume(last, tail.last_line, None, started=active.stat().st_mtime)
            return Resume(last, tail.last_line, first.seq, started=epoch_seconds(first.time))
        return _recover(move_aside(active, last), tail, last)
    rotated = rotated_files(active)
    if not rotated:
        return Resume()
    newest = rotated[-1][1]
    tail, last = readable_tail(newest, linker)
    if tail.problem is not None:
        return _recover(newest, tail, last)
    log.warning("audit trail %s was missing or empty: continuing the chain of %s", active, newest)
    details = {
        "previous_file": newest.name, "previous_last_seq": last.seq,
        "reason": "resumed: the active file was missing or empty",
    }  # fmt: skip
    return Resume(last, tail.last_line, None, (AUDIT_ROTATE, details))


def readable_tail(path: Path, linker: Linker) -> tuple[Tail, Entry]:
    """The tail of ``path`` and its last good entry; AuditError if the chain cannot go on."""
    tail = read_tail(path)
    last = tail.last
    if last is None:
        raise AuditError(
            f"{path}: no readable audit entry at its end ({tail.problem}); the chain cannot "
            f"be resumed: run `otelgate audit verify {path.parent}` and move the files aside"
        )
    if last.alg == HMAC_SHA256 and not linker.keyed:
        raise AuditError(
            f"{path}: the trail is HMAC-linked; configure its key (audit.hmac_key_file) "
            "or start a new trail at another path"
        )
    previous = tail.previous_line
    if (
        last.alg == HMAC_SHA256
        and previous is not None
        and linker.link(previous, HMAC_SHA256) != last.prev
    ):
        raise AuditError(
            f"{path}: the last entry's link does not verify with the configured key "
            "(a different key, or an altered file: run `otelgate audit verify`)"
        )
    return tail, last


def move_aside(active: Path, last: Entry) -> Path:
    """Rename the active file to its rotated name (after its first entry's seq)."""
    try:
        first = read_first_entry(active)
    except EntryError:
        first = None
    target = rotated_name(active, first.seq if first else last.seq)
    os.rename(active, target)
    fsync_directory(active.parent)
    return target


def _recover(damaged: Path, tail: Tail, last: Entry) -> Resume:
    log.error(
        "audit trail %s ends broken after seq %d (%s): the damaged file is kept and the "
        "chain continues in a new file from its last good entry",
        damaged, last.seq, tail.problem,
    )  # fmt: skip
    details = {
        "previous_file": damaged.name, "last_good_seq": last.seq,
        "discarded_bytes": tail.size - tail.good_end, "problem": tail.problem,
    }  # fmt: skip
    return Resume(last, tail.last_line, None, (AUDIT_RECOVER, details))
