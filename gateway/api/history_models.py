"""The response models of ``/health/history`` (their schemas are in the admin app's OpenAPI)
and the conversions from :mod:`gateway.health.history`'s points."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated

from pydantic import BaseModel, Field
from typing_extensions import TypedDict  # pydantic needs it before Python 3.12

from gateway.health.history import MINUTE, MinutePoint, SystemPoint


# The points are TypedDicts, not models: a full answer holds up to max_services x
# history_minutes of them (60,000 by default), and validating dicts is ~7x faster.
class ServiceMinute(TypedDict):
    """One minute of one service: SERVER spans, errors and latency percentiles in seconds
    (2 % relative accuracy; null without requests)."""

    start: Annotated[datetime, Field(description="The start of the minute.")]
    requests: int
    errors: int
    p50: float | None
    p95: float | None
    p99: float | None


class SystemSample(TypedDict):
    """One sample of host and gateway-process usage (utilizations 0..1)."""

    at: datetime
    cpu_utilization: float
    memory_utilization: float
    process_cpu_utilization: float
    process_rss_bytes: int


class HistoryResponse(BaseModel):
    """The last ``minutes`` minutes of every tracked service, and recent system samples."""

    bucket_seconds: int = Field(default=MINUTE, description="The width of a service point.")
    minutes: int = Field(description="Points per service (health.history_minutes).")
    system: list[SystemSample] = Field(description="Oldest first; empty when not sampled.")
    services: dict[str, list[ServiceMinute]] = Field(
        description="Per service, one point per minute up to now, oldest first."
    )


class ServiceHistoryResponse(BaseModel):
    """The last ``minutes`` minutes of one service, one point per minute, oldest first."""

    service: str
    bucket_seconds: int = MINUTE
    minutes: int
    points: list[ServiceMinute]


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@lru_cache(maxsize=4096)
def _minute(start: float) -> datetime:
    # Every service's points start at the same minutes: make each datetime once.
    return _utc(start)


def service_minutes(points: Iterable[MinutePoint]) -> list[ServiceMinute]:
    """The response items of a service's minute points."""
    return [
        ServiceMinute(
            start=_minute(p.start),
            requests=p.requests,
            errors=p.errors,
            p50=p.p50,
            p95=p.p95,
            p99=p.p99,
        )
        for p in points
    ]


def system_samples(points: Iterable[SystemPoint]) -> list[SystemSample]:
    """The response items of system points."""
    return [
        SystemSample(
            at=_utc(p.at),
            cpu_utilization=p.cpu_utilization,
            memory_utilization=p.memory_utilization,
            process_cpu_utilization=p.process_cpu_utilization,
            process_rss_bytes=p.process_rss_bytes,
        )
        for p in points
    ]
