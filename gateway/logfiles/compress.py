"""Crash-safe gzip of rotated files, and the start-up repair of a compression cut short.

``compress`` writes ``<rotated>.gz.tmp.<pid>`` (created with ``O_EXCL``: never a file another
writer is filling), fsyncs it, renames it to ``<rotated>.gz`` and only then removes the plain
file. Whenever the process dies, the plain file or the complete ``.gz`` (or both) exists:
``repair`` removes a leftover ``.gz.tmp[.<pid>]`` and a plain file whose ``.gz`` is complete,
so no line is lost and none is read twice.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from gateway.logfiles.naming import GZ, leftovers, listing, rotated_files, temporary

COMPRESS_LEVEL = 6  # gzip(1)'s default: most of level 9's gain at a third of its time
_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Compressed:
    """What one compression did."""

    source_bytes: int
    gzip_bytes: int


def fsync_directory(directory: Path) -> None:
    """Make renames and removals in ``directory`` durable (best effort)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_file(path: Path) -> None:
    """Make ``path``'s content durable (OSError when it can't be)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def compress(plain: Path, tmp: Path | None = None) -> Compressed:
    """Gzip ``plain`` into ``plain.gz`` (keeping its mtime) through ``tmp`` (default
    ``<plain>.gz.tmp.<pid>``; FileExistsError, touching nothing, if it exists), then remove
    ``plain``."""
    tmp = temporary(plain) if tmp is None else tmp
    final = plain.with_name(plain.name + GZ)
    info = os.stat(plain)
    with open(plain, "rb") as source, open(tmp, "xb") as raw:  # "x": O_EXCL
        try:
            with gzip.GzipFile(
                plain.name, "wb", COMPRESS_LEVEL, fileobj=raw, mtime=int(info.st_mtime)
            ) as packed:
                shutil.copyfileobj(source, packed, _CHUNK)
            raw.flush()
            os.fsync(raw.fileno())
            os.utime(tmp, (info.st_atime, info.st_mtime))
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()  # ours: created above
            raise
    fsync_directory(plain.parent)
    plain.unlink()
    return Compressed(info.st_size, os.stat(final).st_size)


def repair(active: Path) -> list[Path]:
    """Remove what a compression cut short left behind; the paths removed."""
    names = listing(active)
    rotated = rotated_files(active, names)
    gzipped = {f.plain for f in rotated if f.compressed}
    removed = leftovers(active, names)
    removed += [f.path for f in rotated if not f.compressed and f.path in gzipped]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed
