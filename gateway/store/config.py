"""Configuration of the embedded SQLite store (``store:``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field

from gateway.config.values import Duration, StrictModel, parse_window

Window = Annotated[float, BeforeValidator(parse_window)]

#: Attributes of log records whose values the log search indexes, besides the body.
DEFAULT_SEARCH_ATTRIBUTES = (
    "exception.type",
    "exception.message",
    "code.function",
    "code.namespace",
    "http.route",
    "url.path",
    "error.type",
    "event.name",
)


class StoreConfig(StrictModel):
    """The embedded SQLite store; ``path`` defaults to ``<data dir>/otelgate.db``.

    It holds SLO buckets, alerts and error groups always (when enabled), and recent logs and
    spans when the ``store`` exporter is in a pipeline. ``retention`` and ``max_size_mib``
    bound the logs and spans: the oldest go first.
    """

    enabled: bool = True
    path: str | None = Field(default=None, min_length=1)
    flush_interval: Duration = Field(default=5.0, gt=0)
    retention: Window = Field(default=7 * 86400.0, gt=0)
    max_size_mib: float = Field(default=1024.0, ge=1)
    retention_interval: Duration = Field(default=10.0, gt=0)
    # Logs and spans written per second at most (0: no limit); above it whole batches are
    # shed (counted as dropped), so the store's CPU cost is bounded whatever the load.
    max_write_rate: float = Field(default=1000.0, ge=0)
    search_attributes: list[str] = Field(default_factory=lambda: list(DEFAULT_SEARCH_ATTRIBUTES))

    @property
    def max_size_bytes(self) -> int:
        """``max_size_mib`` in bytes."""
        return int(self.max_size_mib * 1024 * 1024)
