"""Reading what a rotating file wrote: the rotated files (plain or gzip) oldest first, then
the active file."""

from __future__ import annotations

import gzip
from pathlib import Path

from gateway.logfiles.naming import rotated_files


def all_files(active: Path) -> list[Path]:
    """The rotated files of ``active``, oldest first, then ``active`` if it exists."""
    files = [f.path for f in rotated_files(active)]
    return files + ([active] if active.exists() else [])


def read_bytes(path: Path) -> bytes:
    """A file's content, gunzipped when its name ends in ``.gz``."""
    if path.name.endswith(".gz"):
        with gzip.open(path, "rb") as packed:
            return packed.read()
    return path.read_bytes()


def all_lines(active: Path) -> list[bytes]:
    """Every line written, in order across every file (each file ends with a newline)."""
    lines: list[bytes] = []
    for path in all_files(active):
        data = read_bytes(path)
        assert not data or data.endswith(b"\n"), path
        lines += data.splitlines()
    return lines
