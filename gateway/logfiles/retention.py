"""Which rotated files retention removes: older than ``max_age``, or beyond the newest
``max_files`` (pure; the active file is never a candidate)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from gateway.logfiles.naming import RotatedFile

Reason = Literal["age", "count"]


def expired(
    files: Sequence[RotatedFile], now: float, max_age: float | None, max_files: int | None
) -> list[tuple[RotatedFile, Reason]]:
    """The files to remove and why, oldest first. A file's age counts from its rotation
    (the time in its name), so compressing it later does not make it younger."""
    ordered = sorted(files, key=lambda f: f.order)
    removed: list[tuple[RotatedFile, Reason]] = []
    kept = []
    for rotated in ordered:
        if max_age is not None and rotated.rotated_at < now - max_age:
            removed.append((rotated, "age"))
        else:
            kept.append(rotated)
    if max_files is not None:
        excess = len(kept) - max_files
        removed += [(f, "count") for f in kept[: max(excess, 0)]]
    return removed
