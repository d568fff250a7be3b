"""Pipelines: processors in configured order, then fan-out to every exporter's queue.

A receiver hands each decoded batch to its :class:`Router`, which feeds every pipeline of that
signal the receiver belongs to. Fan-out is all-or-nothing: before any queue takes a batch,
every queue with the ``refuse`` policy must have room, so a refused client retrying never
produces duplicates downstream. Pipelines that change the data get their own copy; the others
share the received object, which is immutable from then on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

from exporters.queue import ExporterQueue
from exporters.spool import SpoolWriteError
from gateway.errors import BackpressureError, NoPipelineError, NotReadyError
from gateway.otlp.batch import Batch, Signal
from gateway.processors import Processor


class Pipeline:
    """One ``service.pipelines`` entry: processors then exporters."""

    def __init__(
        self,
        name: str,
        signal: Signal,
        processors: Sequence[Processor],
        queues: Sequence[ExporterQueue],
    ) -> None:
        self.name = name
        self.signal = signal
        self.processors = tuple(processors)
        self.queues = tuple(queues)
        self.mutates = any(p.mutates for p in self.processors)

    def check_room(self, items: int, nbytes: int) -> None:
        """Raise the refusal the client should see if any queue would refuse a batch of
        ``items`` and ``nbytes``: backpressure when there is no room, not-ready when closed."""
        for queue in self.queues:
            if queue.would_refuse(items, nbytes):
                if queue.closed:
                    raise NotReadyError(f"pipeline {self.name} is shutting down", retry_after=5.0)
                if queue.problem is not None:
                    raise SpoolWriteError(
                        f"pipeline {self.name}: exporter {queue.name}: {queue.problem}; retry later"
                    )
                raise BackpressureError(
                    f"pipeline {self.name}: exporter {queue.name} queue has no room for "
                    f"{items} item(s) of {nbytes} bytes ({queue.usage}); retry later"
                )

    @property
    def accepting(self) -> bool:
        """False when a ``refuse`` queue is full or closed or a spool cannot write."""
        return self.refusal() is None

    def refusal(self) -> str | None:
        """Why the pipeline cannot take data now (readiness reports it), or None."""
        for queue in self.queues:
            if queue.would_refuse(1, 1):
                if queue.closed:
                    return f"exporter {queue.name}: closed"
                if queue.problem is not None:
                    return f"exporter {queue.name}: {queue.problem}"
                return f"exporter {queue.name}: queue full"
        return None

    async def consume(self, batch: Batch) -> None:
        """Process and enqueue; call :meth:`check_room` first (the router does).

        Returns once every queue holds the batch; for a disk spool that means it is synced.
        """
        for processor in self.processors:
            batch = processor.process(batch)
        if len(self.queues) == 1:
            await self.queues[0].put(batch, reserved=True)
        else:  # several spools sync in parallel; every queue gets the batch even if one fails
            results = await asyncio.gather(
                *(q.put(batch, reserved=True) for q in self.queues), return_exceptions=True
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result


class Stage(Protocol):
    """What a router feeds: a :class:`Pipeline`, or a worker's relay to its supervisor."""

    name: str
    mutates: bool

    def check_room(self, items: int, nbytes: int) -> None: ...

    async def consume(self, batch: Batch) -> None: ...


class Router:
    """Feeds a receiver's batches of one signal to the pipelines that list the receiver."""

    def __init__(
        self, signal: Signal, pipelines: Sequence[Stage], shared: bool | None = None
    ) -> None:
        self.signal = signal
        self.pipelines = tuple(pipelines)
        # Whether mutating pipelines need their own copy (default: when there are several).
        self.shared = len(self.pipelines) > 1 if shared is None else shared

    def check_room(self, items: int, nbytes: int) -> None:
        """Raise the refusal the client should see unless every pipeline has room."""
        if not self.pipelines:
            raise NoPipelineError(f"no {self.signal} pipeline uses this receiver")
        for pipeline in self.pipelines:
            pipeline.check_room(items, nbytes)

    async def consume(self, batch: Batch, *, checked: bool = False) -> None:
        """Deliver ``batch`` to every pipeline, or refuse it for all of them. ``checked``:
        the caller already called :meth:`check_room` for it (a request taken in pieces)."""
        if not checked:
            self.check_room(batch.items, batch.nbytes)
        for pipeline in self.pipelines:
            await pipeline.consume(batch.copy() if self.shared and pipeline.mutates else batch)


# Gateway.emit: feed an internally produced batch to the pipelines listing ``source``.
Emit = Callable[[Batch, str | None], Coroutine[Any, Any, bool]]
