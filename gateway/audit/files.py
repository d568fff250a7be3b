"""The files of an audit trail: the active file, its rotated siblings, reading their ends.

The active file is the configured path (``audit.jsonl``); rotated files sit beside it, named
after the ``seq`` of their first entry: ``audit.000000000001.jsonl``. The chain, not the
names, orders them (``otelgate audit verify`` reads their first entries).
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gateway.audit.chain import Entry, EntryError, parse_entry

TAIL_BYTES = 1024 * 1024
_BLOCK = 64 * 1024


def rotated_name(active: Path, first_seq: int) -> Path:
    """Where the active file goes when it is rotated (a free name: never overwrites)."""
    base = f"{_stem(active)}.{first_seq:012d}"
    candidate, n = active.with_name(f"{base}{active.suffix}"), 0
    while candidate.exists():
        n += 1
        candidate = active.with_name(f"{base}-{n}{active.suffix}")
    return candidate


def rotated_files(active: Path) -> list[tuple[int, Path]]:
    """The rotated siblings of ``active`` with the seq in their name, oldest first."""
    pattern = re.compile(
        re.escape(_stem(active)) + r"\.(\d{12,})(?:-(\d+))?" + re.escape(active.suffix)
    )
    try:
        names = os.listdir(active.parent)
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        if (match := pattern.fullmatch(name)) is not None:
            found.append((int(match[1]), int(match[2] or 0), active.parent / name))
    return [(seq, path) for seq, _, path in sorted(found)]


def _stem(path: Path) -> str:
    return path.name[: len(path.name) - len(path.suffix)] if path.suffix else path.name


@dataclass(frozen=True)
class Tail:
    """The end of a file: its last well-formed entry and what follows it."""

    size: int
    last: Entry | None  # None: no well-formed entry in the bytes read
    last_line: bytes
    previous_line: bytes | None  # the complete line before ``last_line``, when read
    good_end: int  # offset just after the last good line's newline
    problem: str | None  # what is wrong with the bytes after ``good_end``, if any


def read_tail(path: Path, max_bytes: int = TAIL_BYTES) -> Tail:
    """The last well-formed entry of ``path`` found in its last ``max_bytes``."""
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        start = max(0, size - max_bytes)
        fh.seek(start)
        chunk = fh.read(size - start)
    pieces = chunk.split(b"\n")
    trailing = pieces.pop()  # bytes after the last newline (b"" when the file ends with one)
    if start > 0 and pieces:
        pieces.pop(0)  # may be the end of a line that started before the chunk
    problem = f"{len(trailing)} bytes without a newline at the end" if trailing else None
    end = size - len(trailing)
    for index in range(len(pieces) - 1, -1, -1):
        try:
            entry = parse_entry(pieces[index])
        except EntryError as exc:
            problem = f"line ending at byte {end}: {exc}"
            end -= len(pieces[index]) + 1
            continue
        previous = pieces[index - 1] if index > 0 else None
        return Tail(size, entry, pieces[index], previous, end, problem)
    return Tail(size, None, b"", None, end, problem or "empty")


def read_first_entry(path: Path, max_bytes: int = TAIL_BYTES) -> Entry | None:
    """The first entry of ``path``; None when the file is empty; EntryError when unreadable."""
    with open(path, "rb") as fh:
        line = fh.readline(max_bytes)
    if not line:
        return None
    if not line.endswith(b"\n"):
        raise EntryError("the first line has no newline")
    return parse_entry(line[:-1])


def lines_backward(path: Path, end: int | None = None) -> Iterator[bytes]:
    """Complete lines of ``path`` before offset ``end`` (default: its size), last first.

    Bytes after the last newline (an entry being written) are skipped.
    """
    with open(path, "rb") as fh:
        pos = fh.seek(0, os.SEEK_END) if end is None else end
        buffer, complete = b"", False
        while pos > 0:
            step = min(_BLOCK, pos)
            pos -= step
            fh.seek(pos)
            buffer = fh.read(step) + buffer
            if not complete:
                cut = buffer.rfind(b"\n")
                if cut < 0:
                    buffer = b""  # all of it after the last newline so far
                    continue
                buffer, complete = buffer[:cut], True
            pieces = buffer.split(b"\n")
            buffer = pieces.pop(0)  # may continue in the block before
            yield from reversed(pieces)
        if complete:
            yield buffer


class TrailLock:
    """An exclusive lock on ``.<name>.lock`` beside the active file: one writer per trail."""

    def __init__(self, active: Path) -> None:
        self.path = active.with_name(f".{active.name}.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock; OSError naming the file when another process holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OSError(
                f"{self.path}: another process writes this audit trail (one writer per path; "
                "give each gateway worker its own audit.path)"
            ) from None
        self._fd = fd

    def release(self) -> None:
        """Release the lock (the lock file stays)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable (best effort)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (``os.write`` may write fewer)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
