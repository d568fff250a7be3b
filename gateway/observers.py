"""Observers see every accepted batch after fan-out (health, SLO and service tracking).

An observer must be cheap and must not change the batch: it runs on the ingest path, once
per accepted request, after the batch was handed to every pipeline. An observer that raises
is logged and skipped; it never fails the client's request.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from gateway.otlp.batch import Batch

log = logging.getLogger("otelgate.observers")


class Observer(Protocol):
    """Something that watches accepted telemetry."""

    def observe(self, batch: Batch) -> None:
        """Look at ``batch`` (read-only)."""
        ...


def notify(observers: Sequence[Observer], batch: Batch) -> None:
    """Call every observer, logging (not raising) their failures."""
    for observer in observers:
        try:
            observer.observe(batch)
        except Exception:
            log.exception("observer %r failed", observer)
