"""Faults for the disk spool: a filesystem that fills up, and records protobuf cannot decode."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from exporters import spool_files
from gateway.otlp.batch import Batch, Signal
from tests.factories import traces_request


class FullDisk:
    """A filesystem of ``capacity`` bytes under ``directory``, counted as the kernel counts it:
    the files in the directory plus deleted files that a descriptor still holds open. Install
    :meth:`pwrite_all` in place of :func:`exporters.spool_files.pwrite_all`; it fails with
    ENOSPC when a write would pass the capacity (``capacity`` can change meanwhile)."""

    def __init__(self, directory: Path, capacity: int) -> None:
        self.directory = directory.resolve()
        self.capacity = capacity
        self.refused = 0

    def used(self) -> int:
        sizes: dict[int, int] = {}
        for path in self.directory.rglob("*"):
            try:
                st = path.lstat()
            except OSError:  # deleted meanwhile
                continue
            if stat.S_ISREG(st.st_mode):
                sizes[st.st_ino] = st.st_size
        for fd, _ in open_files(self.directory):
            try:
                st = os.fstat(fd)
            except OSError:  # closed meanwhile
                continue
            sizes[st.st_ino] = st.st_size
        return sum(sizes.values())

    def pwrite_all(self, fd: int, buffers: Sequence[bytes], offset: int) -> None:
        current = os.fstat(fd).st_size
        grown = max(current, offset + sum(map(len, buffers))) - current
        if self.used() + grown > self.capacity:
            self.refused += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        spool_files.pwrite_all(fd, list(buffers), offset)


def open_files(directory: Path) -> list[tuple[int, str]]:
    """This process's descriptors on files under ``directory``: ``(fd, target)``; a deleted
    file's target ends with `` (deleted)``."""
    prefix = str(directory.resolve()) + os.sep
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith(prefix):
            found.append((int(name), target))
    return found


def open_for_writing(directory: Path) -> list[str]:
    """Segment files under ``directory`` this process holds open for writing."""
    held = []
    for fd, target in open_files(directory):
        try:
            with open(f"/proc/self/fdinfo/{fd}") as info:
                flags = next(int(line.split()[1], 8) for line in info if line.startswith("flags"))
        except (OSError, StopIteration):
            continue
        if target.endswith(".seg") and flags & os.O_ACCMODE == os.O_WRONLY:
            held.append(target)
    return held


def _field(number: int, data: bytes) -> bytes:
    """A length-delimited protobuf field."""
    key, size, out = number << 3 | 2, len(data), bytearray()
    for value in (key, size):
        while value > 0x7F:
            out.append(value & 0x7F | 0x80)
            value >>= 7
        out.append(value)
    return bytes(out) + data


def undecodable_traces_batch(spans: int = 1, depth: int = 40) -> Batch:
    """A traces batch whose bytes protobuf refuses to decode: a resource attribute nested
    ``depth`` kvlists deep (3 messages a level, past protobuf's limit of 100). Built as bytes,
    since the Python classes cannot build it either."""
    value = _field(1, b"leaf")  # AnyValue.string_value
    for _ in range(depth):  # AnyValue.kvlist_value -> KeyValueList.values -> KeyValue
        value = _field(6, _field(1, _field(1, b"k") + _field(2, value)))
    resource_spans = _field(1, _field(1, _field(1, b"deep") + _field(2, value)))
    encoded = traces_request(spans).SerializeToString() + _field(1, resource_spans)
    return Batch(Signal.TRACES, None, spans, encoded)
