"""Names of rotated files: ``<name>.<UTC rotation time>-<nnn>[.gz]`` beside the active file.

``otlp.jsonl`` rotated at 2025-03-01 00:00:00 UTC becomes ``otlp.jsonl.20250301T000000Z-000``,
then ``otlp.jsonl.20250301T000000Z-000.gz`` once compressed; a second rotation within the same
second gets ``-001``, and so on. Every rotated name has the same shape and differs from the
others only in digits, so plain name order (``ls``, ``sort``, a shell glob, in any locale) is
time order, and a name is never reused, so rotation never overwrites. At most
:data:`MAX_SEQ` + 1 rotations fit in one second; past that the rotation waits for the next.

``<rotated>.gz.tmp.<pid>`` is a compression in progress (removed at start if one was cut
short); names of earlier versions (no ``-nnn``, ``-1``, a ``.gz.tmp`` without pid) are still
read and repaired.
"""

from __future__ import annotations

import calendar
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

GZ = ".gz"
TMP = ".gz.tmp"
MAX_SEQ = 999
_STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True, slots=True)
class RotatedFile:
    """One rotated file: when it was rotated, its collision number, plain or gzip."""

    path: Path
    rotated_at: float  # epoch seconds (whole seconds: from the name)
    seq: int
    compressed: bool

    @property
    def plain(self) -> Path:
        """The uncompressed name (``path`` without ``.gz``)."""
        return self.path.with_name(self.path.name.removesuffix(GZ))

    @property
    def order(self) -> tuple[float, int]:
        """Sort key: oldest first."""
        return (self.rotated_at, self.seq)


def _pattern(active: Path) -> re.Pattern[str]:
    return re.compile(
        re.escape(active.name) + r"\.(\d{8}T\d{6}Z)(?:-(\d+))?(\.gz|\.gz\.tmp(?:\.\d+)?)?"
    )


def _is_tmp(suffix: str | None) -> bool:
    return suffix is not None and suffix.startswith(TMP)


def parse(active: Path, candidate: str) -> RotatedFile | None:
    """The rotated file ``candidate`` (a name in ``active``'s directory) of ``active``, or
    None when it is not one (a compression in progress, or a time that is not a date)."""
    match = _pattern(active).fullmatch(candidate)
    if match is None or _is_tmp(match[3]):
        return None
    try:
        at = float(calendar.timegm(time.strptime(match[1], _STAMP)))
    except (ValueError, OverflowError):
        return None  # e.g. month 13: not a name this writer gave
    return RotatedFile(active.with_name(candidate), at, int(match[2] or 0), match[3] == GZ)


def temporary(plain: Path) -> Path:
    """Where ``plain`` is gzipped before the rename: unique to this process."""
    return plain.with_name(f"{plain.name}{TMP}.{os.getpid()}")


def leftovers(active: Path, names: list[str]) -> list[Path]:
    """The ``.gz.tmp[.<pid>]`` files of ``active`` among ``names``: compressions cut short."""
    pattern = _pattern(active)
    return [active.with_name(n) for n in names if (m := pattern.fullmatch(n)) and _is_tmp(m[3])]


def listing(active: Path) -> list[str]:
    """Names in ``active``'s directory (empty when it does not exist; OSError when it
    cannot be read)."""
    try:
        return os.listdir(active.parent)
    except FileNotFoundError:
        return []


def rotated_files(active: Path, names: list[str] | None = None) -> list[RotatedFile]:
    """Every rotated file of ``active``, oldest first (a name that is both plain and
    ``.gz`` is listed twice: the start-up repair removes the plain one)."""
    found = [f for n in (listing(active) if names is None else names) if (f := parse(active, n))]
    return sorted(found, key=lambda f: (f.order, f.compressed))


def new_name(active: Path, at: float, names: list[str]) -> Path | None:
    """A rotated name for ``active`` at ``at``, after every existing one of the same second
    (a removed name is not reused out of order; none is ever overwritten); None when the
    second already has :data:`MAX_SEQ` + 1 of them."""
    stamp = time.strftime(_STAMP, time.gmtime(at))
    pattern = _pattern(active)
    same = [int(m[2] or 0) for n in names if (m := pattern.fullmatch(n)) and m[1] == stamp]
    seq = max(same) + 1 if same else 0
    return active.with_name(f"{active.name}.{stamp}-{seq:03d}") if seq <= MAX_SEQ else None
