"""Building audit trails for the tests: a settable clock, trails, and editing their files."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from gateway.audit.trail import AuditTrail

START = 1_700_000_000.0  # 2023-11-14T22:13:20Z
KEY = b"k" * 32


class Clock:
    """A clock the test moves."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_trail(path: Path, clock: Clock | None = None, **kwargs: Any) -> AuditTrail:
    """A trail at ``path`` on ``clock`` (a fresh one by default), not opened."""
    return AuditTrail(path, clock=clock or Clock(), **kwargs)


def write_trail(
    directory: Path, entries: int = 10, *, key: bytes | None = None, max_size: int = 10**9,
    name: str = "audit.jsonl",
) -> AuditTrail:  # fmt: skip
    """A closed trail in ``directory``: audit.start, ``entries`` config.reload, audit.stop."""
    trail = make_trail(directory / name, key=key, max_size=max_size)
    trail.open()
    for i in range(entries):
        trail.record("config.reload", f"user{i % 3}", {"i": i, "diff": {"changed": ["a.b"]}})
    trail.close()
    return trail


def copy_dir(source: Path, target: Path) -> Path:
    """A copy of ``source`` to tamper with."""
    shutil.copytree(source, target)
    return target


def lines(path: Path) -> list[bytes]:
    """The lines of ``path``, newlines kept."""
    return path.read_bytes().splitlines(keepends=True)


def rewrite(path: Path, new_lines: list[bytes]) -> None:
    """Replace ``path``'s content with ``new_lines``."""
    path.write_bytes(b"".join(new_lines))


def trail_files(directory: Path) -> list[Path]:
    """The trail's ``*.jsonl`` files, by name."""
    return sorted(directory.glob("*.jsonl"))
