"""Which rotated audit files retention removes: those beyond the newest ``max_files``, and
those whose newest entry is older than ``max_age`` (docs/audit.md#retention).

Only the oldest files are removed, never one in the middle of the chain: each removal is
recorded by an ``audit.prune`` entry naming the file's ``seq`` range and its last hash, which
is how ``otelgate audit verify`` accepts a trail whose beginning is gone — and a gap in the
middle would break the chain whatever was recorded.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from gateway.audit.chain import EntryError, epoch_seconds
from gateway.audit.files import plain_name, read_first_entry, read_tail

Reason = Literal["age", "count"]


@dataclass(frozen=True, slots=True)
class Summary:
    """What a removal records about a rotated file: its ``seq`` range, its last line (whose
    link is the removed file's last hash) and when its newest entry was written."""

    first_seq: int | None
    last_seq: int
    last_line: bytes
    last_time: float | None


class Unreadable(Exception):
    """A rotated file whose summary cannot be read: retention stops before it (nothing to
    record its removal by), and the trail's status shows it as a ``cleanup`` problem."""


Removal = tuple[Path, Reason, Summary]


@dataclass
class Plan:
    """What retention removes now, oldest first, and what stopped it early (if anything)."""

    removals: list[Removal] = field(default_factory=list)
    blocked: Unreadable | None = None


class Summaries:
    """Summaries of rotated files by the name they were rotated to (their content never
    changes, and compression keeps it): a ``.gz`` is decompressed once, not at every pass.
    A file that cannot be summarised is not read again until it changes (size, mtime, inode).
    """

    def __init__(self) -> None:
        self._known: dict[str, Summary] = {}
        self._failed: dict[Path, tuple[tuple[int, int, int], str]] = {}

    def remember(self, path: Path, summary: Summary) -> None:
        """What the writer knew when it rotated ``path``."""
        self._known[plain_name(path)] = summary

    def of(self, path: Path) -> Summary:
        """``path``'s summary (read when not known); :class:`Unreadable` when it holds no
        readable entry or cannot be read."""
        name = plain_name(path)
        if (known := self._known.get(name)) is not None:
            return known
        try:
            info = os.stat(path)
        except OSError as exc:
            raise _unreadable(path, exc.strerror or str(exc)) from None
        signature = (info.st_ino, info.st_size, info.st_mtime_ns)
        failed = self._failed.get(path)
        if failed is not None and failed[0] == signature:
            raise _unreadable(path, failed[1])
        try:
            found = _read_summary(path)
        except (OSError, EOFError, zlib.error, EntryError) as exc:
            found = str(exc) or type(exc).__name__
        if isinstance(found, str):
            self._failed[path] = (signature, found)
            raise _unreadable(path, found)
        self._failed.pop(path, None)
        self._known[name] = found
        return found

    def forget(self, path: Path) -> None:
        """``path`` was removed."""
        self._known.pop(plain_name(path), None)
        self._failed.pop(path, None)


def _unreadable(path: Path, why: str) -> Unreadable:
    return Unreadable(f"{path.name} cannot be read ({why}): retention stops before it")


def _read_summary(path: Path) -> Summary | str:
    """``path``'s summary, or why there is none."""
    tail = read_tail(path)
    if tail.last is None:
        return "no readable entry"
    first = read_first_entry(path)
    return Summary(
        first.seq if first else None, tail.last.seq, tail.last_line, epoch_seconds(tail.last.time)
    )


def expired(
    files: Sequence[Path],
    summaries: Summaries,
    now: float,
    max_age: float | None,
    max_files: int | None,
) -> Plan:
    """The oldest of ``files`` (rotated files, oldest first) to remove, and why.

    First those whose newest entry is older than ``max_age``, in order, up to the first that
    is not; then the oldest beyond ``max_files`` among the rest. A file whose summary cannot
    be read (or whose newest entry has no readable time, when its age matters) stops the
    removal there: it and everything after it are kept, and ``blocked`` says why.
    """
    plan = Plan()
    index = 0
    try:
        while max_age is not None and index < len(files):
            summary = summaries.of(files[index])
            if summary.last_time is None:
                raise _unreadable(files[index], "its newest entry has no readable time")
            if summary.last_time >= now - max_age:
                break
            plan.removals.append((files[index], "age", summary))
            index += 1
        excess = 0 if max_files is None else len(files) - index - max_files
        for path in files[index : index + max(0, excess)]:
            plan.removals.append((path, "count", summaries.of(path)))
    except Unreadable as exc:
        plan.blocked = exc
    return plan
