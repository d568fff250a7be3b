"""Configuration of the embedded SQLite store."""

from __future__ import annotations

from pydantic import (
    Field,
)

from gateway.config.values import Duration, StrictModel


class StoreConfig(StrictModel):
    """The embedded SQLite store; ``path`` defaults to ``<data dir>/otelgate.db``."""

    enabled: bool = True
    path: str | None = Field(default=None, min_length=1)
    flush_interval: Duration = Field(default=5.0, gt=0)
