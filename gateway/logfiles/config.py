"""How a file the gateway writes is rotated and kept (``rotation:``), docs/log-files.md.

Shared by the ``file`` exporter (``exporters.<id>.rotation``) and the gateway's own log file
(``logging.rotation``). Times are UTC: ``daily_at: "00:00"`` rotates at midnight UTC.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

from gateway.config.values import Duration, Size, StrictModel, Window

DAY = 86400.0
MIB = 1024 * 1024
_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


def clock_time(value: Any) -> Any:
    """``daily_at``'s check: ``"HH:MM"`` (UTC) or None; ValueError otherwise."""
    # YAML 1.1 reads an unquoted 12:30 as the base-60 number 750: take it back.
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        value = f"{value // 60:02d}:{value % 60:02d}"
    if value is not None and (not isinstance(value, str) or not _CLOCK.fullmatch(value)):
        raise ValueError(
            f'must be a UTC time of day HH:MM, 00:00 to 23:59, e.g. "00:00" (got {value!r})'
        )
    return value


#: A daily rotation time, ``"HH:MM"`` in UTC; None: no daily rotation.
DailyAt = Annotated[str | None, BeforeValidator(clock_time)]


def next_daily(daily_at: str | None, after: float) -> float | None:
    """The first ``daily_at`` (UTC) strictly after ``after`` (epoch seconds), or None."""
    if daily_at is None:
        return None
    hours, minutes = (int(part) for part in daily_at.split(":"))
    at = math.floor(after / DAY) * DAY + hours * 3600 + minutes * 60
    return at if at > after else at + DAY


class FreeSpace(StrictModel):
    """A level is reached when the directory's filesystem has less than ``ratio`` of its size
    free **and** less than ``bytes`` free: low both relatively and absolutely, so a small disk
    half empty and a large one with plenty of bytes free are both fine. ``null`` leaves one
    test out (the other decides alone)."""

    ratio: float | None = Field(ge=0, le=1)
    bytes: Size | None = Field(ge=0)

    @model_validator(mode="after")
    def _one_test_at_least(self) -> FreeSpace:
        if self.ratio is None and self.bytes is None:
            raise ValueError("give ratio, bytes or both")
        return self

    def below(self, free: int, total: int) -> bool:
        """Whether ``free`` of ``total`` bytes is below both limits (an empty filesystem
        size counts as below the ratio)."""
        low_ratio = self.ratio is None or total <= 0 or free / total < self.ratio
        return low_ratio and (self.bytes is None or free < self.bytes)


def _limit(value: float | None) -> float:
    return math.inf if value is None else value


class FreeSpaceThresholds(StrictModel):
    """When low free space makes a file's rotation status ``warning`` or ``critical``."""

    warning: FreeSpace = FreeSpace(ratio=0.10, bytes=1024 * MIB)
    critical: FreeSpace = FreeSpace(ratio=0.02, bytes=100 * MIB)

    @model_validator(mode="after")
    def _ordered(self) -> FreeSpaceThresholds:
        c, w = self.critical, self.warning
        if _limit(c.ratio) > _limit(w.ratio) or _limit(c.bytes) > _limit(w.bytes):
            raise ValueError(
                "critical must not ask for more free space than warning "
                "(its ratio and its bytes must each be at most warning's)"
            )
        return self


class RotationConfig(StrictModel):
    """Rotation by size and once a day, gzip of rotated files, retention by age and count.

    ``max_size`` (default 100 MiB; null: no size limit) and ``daily_at`` (``"HH:MM"`` UTC,
    default ``"00:00"``; null: no daily rotation) start a new file; ``compress`` gzips the
    rotated ones; rotated files older than ``max_age`` (default 30 days; null: no limit) or
    beyond the newest ``max_files`` (default 30; null: no count limit) are removed, so a file
    takes at most ``(max_files + 1) * max_size`` before compression. Cleanup runs at each
    rotation and every ``check_interval``.
    """

    max_size: Size | None = Field(default=100 * MIB, ge=1)
    daily_at: DailyAt = "00:00"
    compress: bool = True
    max_age: Window | None = Field(default=30 * DAY, gt=0)
    max_files: int | None = Field(default=30, ge=0)
    check_interval: Duration = Field(default=60.0, gt=0)
    free_space: FreeSpaceThresholds = FreeSpaceThresholds()

    def next_daily(self, after: float) -> float | None:
        """The first daily rotation time strictly after ``after`` (epoch seconds), or None."""
        return next_daily(self.daily_at, after)
