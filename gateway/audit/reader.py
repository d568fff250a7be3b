"""Paging through an audit trail, newest first, for ``GET /audit``.

Files are read backwards from their ends, so a page costs what it shows, not the size of the
trail; a page scans at most ``max_scan`` entries (filters that match little return a shorter
page with a cursor to continue from).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.audit.chain import Entry, EntryError, Linker, parse_entry
from gateway.audit.files import lines_backward, read_first_entry

MAX_SCAN = 100_000


@dataclass(frozen=True)
class PageEntry:
    """An entry with its hash (the next entry's ``prev``; None for HMAC without the key)."""

    entry: Entry
    hash: str | None
    file: str


@dataclass(frozen=True)
class Page:
    """Entries newest first; ``next`` is the ``before_seq`` of the next page (None: the end)."""

    entries: list[PageEntry]
    next: int | None
    scanned: int


def matches(entry: Entry, action: str | None, actor: str | None) -> bool:
    """``action`` matches itself and its dotted children (``auth`` matches ``auth.failure``)."""
    if actor is not None and entry.actor != actor:
        return False
    if action:
        prefix = action.rstrip(".")
        return entry.action == prefix or entry.action.startswith(prefix + ".")
    return True


def read_page(
    files: Sequence[Path],
    linker: Linker,
    *,
    limit: int,
    before_seq: int | None = None,
    action: str | None = None,
    actor: str | None = None,
    max_scan: int = MAX_SCAN,
) -> Page:
    """Up to ``limit`` entries older than ``before_seq`` matching the filters, newest first.

    ``files`` are the trail's files oldest first; unreadable lines are skipped (``otelgate
    audit verify`` is the tool that reports them). FileNotFoundError if a file went away.
    """
    found: list[PageEntry] = []
    scanned = 0
    last_seq: int | None = None
    for path in reversed(files):
        if before_seq is not None and _starts_at_or_after(path, before_seq):
            continue
        for line in lines_backward(path):
            try:
                entry = parse_entry(line)
            except EntryError:
                continue
            if before_seq is not None and entry.seq >= before_seq:
                continue
            scanned += 1
            last_seq = entry.seq
            if matches(entry, action, actor):
                found.append(PageEntry(entry, _hash(linker, line, entry), path.name))
                if len(found) >= limit:
                    return Page(found, entry.seq if entry.seq > 1 else None, scanned)
            if scanned >= max_scan:
                return Page(found, last_seq if last_seq > 1 else None, scanned)
    return Page(found, None, scanned)


def _starts_at_or_after(path: Path, seq: int) -> bool:
    try:
        first = read_first_entry(path)
    except EntryError:
        return False
    return first is not None and first.seq >= seq


def _hash(linker: Linker, line: bytes, entry: Entry) -> str | None:
    try:
        return linker.link(line, entry.alg)
    except ValueError:
        return None
