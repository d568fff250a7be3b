"""The contract every exporter implements: ``async push(batch)`` and a start/stop lifecycle.

Exporters stay small: queueing, retry, backoff and timeouts live in :mod:`exporters.queue`.
``push`` either returns (the batch was delivered), or raises one of
:class:`gateway.errors.PermanentError` / :class:`~gateway.errors.RetryableError` /
:class:`~gateway.errors.ThrottledError`, classified where the third-party error was caught.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from gateway.batch import Batch


@runtime_checkable
class Exporter(Protocol):
    """A fan-out target."""

    async def start(self) -> None:
        """Open connections or files; called before any ``push``."""

    async def push(self, batch: Batch) -> None:
        """Deliver one batch or raise a classified error. Must not mutate ``batch``."""

    async def shutdown(self) -> None:
        """Release resources; called after the last ``push``."""


class ExporterBase:
    """Convenience base with no-op lifecycle methods."""

    async def start(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None
