"""The contract every exporter implements: ``async push(batch)`` and a start/stop lifecycle.

Exporters stay small: queueing, retry, backoff and timeouts live in :mod:`exporters.queue`.
``push`` either returns (the batch was delivered; :class:`Refused` when the backend kept all
but some items; :class:`Partial` when it kept some and asked for the others again), or
raises one of :class:`gateway.errors.PermanentError` (its subclass
:class:`~gateway.errors.RefusedDataError` when the backend blamed the data, so the queue
splits the batch) / :class:`~gateway.errors.RetryableError` /
:class:`~gateway.errors.ThrottledError`, classified where the third-party error was caught.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

from gateway.errors import RetryableError
from gateway.otlp.batch import Batch


@dataclass(frozen=True, slots=True)
class Refused:
    """The backend stored a batch except ``items`` of its items, refused for ``reason``."""

    items: int
    reason: str


@dataclass(frozen=True, slots=True)
class Partial:
    """The backend stored part of a batch and answered ``error`` for ``remainder`` (the items
    to send again, e.g. the documents of a bulk request it throttled); it refused ``refused``
    more for good, for ``reason``. The queue retries only ``remainder``, with backoff."""

    remainder: Batch
    error: RetryableError
    refused: int = 0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Shed:
    """The exporter chose not to deliver ``items`` of a batch to protect the gateway (its own
    load shedding, e.g. the embedded store's write budget): counted as dropped, not as a
    failure, and not logged as an error."""

    items: int
    reason: str


@runtime_checkable
class Exporter(Protocol):
    """A fan-out target."""

    async def start(self) -> None:
        """Open connections or files; called before any ``push``."""

    async def push(self, batch: Batch) -> Refused | Partial | Shed | None:
        """Deliver one batch or raise a classified error. Must not mutate ``batch``."""

    async def shutdown(self) -> None:
        """Release resources; called after the last ``push``."""


class ExporterBase:
    """Convenience base with no-op lifecycle methods."""

    #: True for exporters that send ``batch.serialized()`` and never read ``batch.request``:
    #: their queue may hand them several queued batches merged into one by concatenating
    #: bytes (:meth:`gateway.otlp.batch.Batch.concatenate`), one export call instead of many.
    sends_encoded_batches: ClassVar[bool] = False
    #: True for exporters whose queue drops by design when they fall behind (the embedded
    #: store): the built-in ItemsLost alert does not count them (a rule naming them does).
    sheds_by_design: ClassVar[bool] = False

    async def start(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None
