"""Configuration of error tracking (``errors:``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field

from gateway.config.values import Duration, StrictModel, parse_window

Window = Annotated[float, BeforeValidator(parse_window)]


class ErrorTrackingConfig(StrictModel):
    """Exceptions from span events and log records, grouped by fingerprint (docs/errors.md).

    Every occurrence is counted; the expensive parts (parsing the stack, keeping a sample,
    writing to the store) happen at most once per group per ``sample_interval`` after the
    first ``samples_per_group``, so an exception storm costs O(groups), not O(events).
    """

    enabled: bool = True
    max_groups: int = Field(default=10_000, gt=0)
    samples_per_group: int = Field(default=10, ge=1, le=100)
    sample_interval: Duration = Field(default=60.0, ge=0)
    max_frames: int = Field(default=3, ge=1, le=20)
    retention: Window = Field(default=30 * 86400.0, gt=0)
    max_stacktrace_bytes: int = Field(default=64 * 1024, ge=1024)
