"""Processors: what runs on a batch between the receiver and the exporters, in config order."""

from __future__ import annotations

from typing import Protocol

from gateway.otlp.batch import Batch


class Processor(Protocol):
    """A step of a pipeline. ``mutates`` says whether it changes ``batch.request`` in place
    (the pipeline then gives it a private copy when the batch is shared)."""

    name: str
    mutates: bool

    def process(self, batch: Batch) -> Batch:
        """Return the batch to pass on (usually the same object)."""
        ...

    async def start(self) -> None:
        """Start periodic work (span metrics flush), after the exporters started."""

    async def stop(self) -> None:
        """Stop and hand on what is left, before the exporters drain."""
