"""Merging queued batches into one export request, for exporters that send OTLP bytes.

Every export call has a fixed cost (a gRPC call is ~100 us of Python in grpc.aio; an HTTP
request more), while SDKs send small requests. So a queue worker of an exporter that only
sends ``batch.serialized()`` (:attr:`exporters.base.ExporterBase.sends_encoded_batches`)
gathers the batches of one signal waiting behind the first, for up to ``timeout`` or until a
limit is reached, and sends them as one request: the Collector's batch processor, without
decoding anything (see :meth:`gateway.otlp.batch.Batch.concatenate`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from gateway.otlp.batch import Batch

# How many batches of other signals are stepped over while gathering one signal's batches.
LOOKAHEAD = 64


@dataclass(frozen=True, slots=True)
class MergeLimits:
    """How big a merged request may grow, and how long a worker waits for it to fill."""

    max_items: int = 8192
    max_bytes: int = 4_000_000  # under gRPC's default 4 MiB receive limit
    timeout: float = 0.2  # seconds; 0 merges only what is already waiting


class MergeGroup:
    """The batches of one signal gathered so far for one request."""

    def __init__(self, first: Batch, limits: MergeLimits) -> None:
        self.batches = [first]
        self.limits = limits
        self.items = first.items
        self.size = len(first.serialized())
        self.full = first.items >= limits.max_items or self.size >= limits.max_bytes

    def absorb(self, pending: deque[Batch]) -> None:
        """Move batches of this group's signal from ``pending`` into the group, oldest first,
        while they fit; batches of other signals keep their place. Sets :attr:`full` when the
        next one would not fit."""
        signal = self.batches[0].signal
        skipped: list[Batch] = []
        while pending and not self.full and len(skipped) < LOOKAHEAD:
            candidate = pending.popleft()
            if candidate.signal is not signal:
                skipped.append(candidate)
                continue
            size = self.size + len(candidate.serialized())
            if self.items + candidate.items > self.limits.max_items or size > self.limits.max_bytes:
                pending.appendleft(candidate)
                self.full = True
                break
            self.batches.append(candidate)
            self.items, self.size = self.items + candidate.items, size
        pending.extendleft(reversed(skipped))

    def batch(self) -> Batch:
        """The gathered batches as one."""
        return Batch.concatenate(self.batches)
