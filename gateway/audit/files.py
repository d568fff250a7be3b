"""The files of an audit trail: the active file, its rotated siblings, reading their ends.

The active file is the configured path (``audit.jsonl``); rotated files sit beside it, named
after the ``seq`` of their first entry: ``audit.000000000001.jsonl``, gzipped to
``audit.000000000001.jsonl.gz`` (by :func:`gateway.logfiles.compress.compress`, through
``<name>.gz.tmp`` or a unique ``<name>.gz.tmp.<anything>``: both are recognised). The chain,
not the names, orders them (``otelgate audit verify`` reads their first entries). Every
reader here opens a ``.gz`` member transparently (:func:`open_member`).
"""

from __future__ import annotations

import fcntl
import gzip
import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from gateway.audit.chain import Entry, EntryError, parse_entry
from gateway.logfiles.compress import fsync_directory as fsync_directory  # kept importable
from gateway.logfiles.naming import GZ, TMP

TAIL_BYTES = 1024 * 1024
_BLOCK = 64 * 1024


def is_gzip(path: Path) -> bool:
    """Whether ``path`` is a gzipped member (by its name: ``....gz``)."""
    return path.name.endswith(GZ)


def plain_name(path: Path) -> str:
    """``path``'s name without ``.gz``: the name the file had when it was rotated."""
    return path.name.removesuffix(GZ)


def open_member(path: Path) -> io.BufferedIOBase:
    """``path`` opened for reading its lines, decompressing a ``.gz``. A plain rotated file
    compressed meanwhile (it is gone, its ``.gz`` is there) is read from the ``.gz``."""
    if is_gzip(path):
        return gzip.open(path, "rb")
    try:
        return open(path, "rb")
    except FileNotFoundError:
        packed = path.with_name(path.name + GZ)
        if not packed.exists():
            raise
        return gzip.open(packed, "rb")


def rotated_name(active: Path, first_seq: int) -> Path:
    """Where the active file goes when it is rotated (a free name: never overwrites, nor
    takes the name of a file that was compressed or is being compressed)."""
    base = f"{_stem(active)}.{first_seq:012d}"
    names = set(_listing(active))
    candidate, n = active.with_name(f"{base}{active.suffix}"), 0
    while candidate.name in names or any(_taken_by(candidate.name, name) for name in names):
        n += 1
        candidate = active.with_name(f"{base}-{n}{active.suffix}")
    return candidate


def _taken_by(plain: str, name: str) -> bool:
    """Whether ``name`` is ``plain``'s ``.gz`` or a compression of it in progress."""
    return name.startswith(plain) and (name == plain + GZ or is_temporary(name[len(plain) :]))


def is_temporary(suffix: str) -> bool:
    """Whether ``suffix`` (after a rotated file's name) marks a compression in progress:
    ``.gz.tmp``, or a unique ``.gz.tmp.<anything>`` (both forms are accepted, whichever
    :func:`gateway.logfiles.compress.compress` writes)."""
    return suffix == TMP or suffix.startswith(TMP + ".")


def _rotated_pattern(active: Path) -> re.Pattern[str]:
    return re.compile(
        re.escape(_stem(active))
        + r"\.(\d{12,})(?:-(\d+))?"
        + re.escape(active.suffix)
        + r"(\.gz|\.gz\.tmp(?:\..+)?)?",
        re.DOTALL,
    )


def _listing(active: Path) -> list[str]:
    try:
        return os.listdir(active.parent)
    except FileNotFoundError:
        return []


def rotated_files(active: Path) -> list[tuple[int, Path]]:
    """The rotated siblings of ``active`` with the seq in their name, oldest first.

    A compressed file is listed by its ``.gz`` name; when a compression was cut short and
    both exist, only the ``.gz`` (complete: it appears by rename) is listed.
    """
    pattern = _rotated_pattern(active)
    found: dict[str, tuple[int, int, Path]] = {}
    for name in _listing(active):
        match = pattern.fullmatch(name)
        if match is None or is_temporary(match[3] or ""):
            continue
        plain = name.removesuffix(GZ)
        if plain in found and not match[3]:
            continue  # its .gz is listed already
        found[plain] = (int(match[1]), int(match[2] or 0), active.parent / name)
    return [(seq, path) for seq, _, path in sorted(found.values())]


def interrupted(active: Path) -> list[Path]:
    """What a compression cut short left beside ``active``: ``.gz.tmp[.*]`` files, and plain
    rotated files whose ``.gz`` is complete (both are safe to remove)."""
    pattern = _rotated_pattern(active)
    names = _listing(active)
    present = set(names)
    found = []
    for name in names:
        if (match := pattern.fullmatch(name)) is None:
            continue
        if is_temporary(match[3] or "") or (not match[3] and name + GZ in present):
            found.append(active.parent / name)
    return sorted(found)


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
    """The last well-formed entry of ``path`` found in its last ``max_bytes`` (of its
    content: a ``.gz`` is decompressed to its end)."""
    size, start, chunk = _last_bytes(path, max_bytes)
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


def _last_bytes(path: Path, max_bytes: int) -> tuple[int, int, bytes]:
    """(content size, offset of the chunk, the chunk): the last ``max_bytes`` of ``path``."""
    if not is_gzip(path):
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            start = max(0, size - max_bytes)
            fh.seek(start)
            return size, start, fh.read(size - start)
    kept, size = bytearray(), 0
    with gzip.open(path, "rb") as packed:
        while block := packed.read(_BLOCK * 16):
            size += len(block)
            kept += block
            del kept[: max(0, len(kept) - max_bytes)]
    return size, size - len(kept), bytes(kept)


def read_first_entry(path: Path, max_bytes: int = TAIL_BYTES) -> Entry | None:
    """The first entry of ``path``; None when the file is empty; EntryError when unreadable."""
    with open_member(path) as fh:
        line = fh.readline(max_bytes)
    if not line:
        return None
    if not line.endswith(b"\n"):
        raise EntryError("the first line has no newline")
    return parse_entry(line[:-1])


def lines_backward(path: Path, end: int | None = None) -> Iterator[bytes]:
    """Complete lines of ``path`` before offset ``end`` (default: its size), last first.

    Bytes after the last newline (an entry being written) are skipped. A ``.gz`` cannot be
    read backwards: it is decompressed into an anonymous temporary file first.
    """
    if not is_gzip(path) and not path.exists() and path.with_name(path.name + GZ).exists():
        path = path.with_name(path.name + GZ)  # compressed since it was listed
    if is_gzip(path):
        with gzip.open(path, "rb") as packed, tempfile.TemporaryFile() as plain:
            shutil.copyfileobj(packed, plain, _BLOCK * 16)
            yield from _backward(plain, end)
        return
    with open(path, "rb") as fh:
        yield from _backward(fh, end)


def _backward(fh: IO[bytes], end: int | None) -> Iterator[bytes]:
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


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (``os.write`` may write fewer)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
