"""A worker's side of the relay: accepted batches, audit notes and log records to the
supervisor (:mod:`gateway.workers.link`).

:class:`RelayPipeline` sits first in every router of a worker receiver, so the supervisor gets
each accepted batch as the receiver produced it, before a worker pipeline's processors change
it; the supervisor then runs the pipelines' central part and the observers on it.
"""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Any, Literal

from prometheus_client import Counter

from gateway.error_tracking.capture import exception_subset
from gateway.errors import BackpressureError
from gateway.health.services import ServiceHealthTracker
from gateway.otlp.batch import Batch, Signal
from gateway.workers.link import AUDIT, COUNT_HEALTH, EXCEPTIONS_ONLY, LOG, LinkWriter

Need = Literal["all", "exceptions", "none"]


class RelayNeeds:
    """Which accepted batches the supervisor's observers need, per signal (it tells the
    worker): all of them (SLOs, alert log counts), only their spans and log records that hold
    an exception (error groups), or none (service health is counted in the worker)."""

    def __init__(self) -> None:
        self.by_signal: dict[Signal, Need] = {signal: "all" for signal in Signal}

    def select(self, batch: Batch) -> Batch | None:
        """What of ``batch`` the supervisor's observers need: all of it, its spans and log
        records that hold an exception, or nothing (None)."""
        need = self.by_signal[batch.signal]
        if need == "all":
            return batch
        return exception_subset(batch) if need == "exceptions" else None


class RelayPipeline:
    """A pipeline-shaped stage, last in a worker's router for one receiver and signal: it
    counts service health (unless the supervisor must, after its pipeline changed the batch)
    and relays to the supervisor every batch when the supervisor runs a pipeline of that
    receiver and signal (``central``), else what its observers need."""

    mutates = False

    def __init__(
        self,
        link: LinkWriter,
        receiver: str,
        signal: Signal,
        needs: RelayNeeds,
        *,
        central: bool,
        health: ServiceHealthTracker | None,
        relayed: Counter | None = None,
    ) -> None:
        self.link = link
        self.receiver = receiver
        self.signal = signal
        self.needs = needs
        self.central = central
        self.health = health  # None: the supervisor counts it (COUNT_HEALTH)
        self.name = f"relay/{receiver}"
        self._relayed = relayed.labels(signal.value) if relayed is not None else None

    def check_room(self, items: int, nbytes: int) -> None:
        """Refuse (retryable) while the supervisor is too far behind, when there may be
        something to relay."""
        if not self.central and self.needs.by_signal[self.signal] == "none":
            return
        if not self.link.room(nbytes):
            raise BackpressureError(
                f"the gateway's supervisor is behind ({self.link.buffered} bytes waiting "
                "for it); retry later"
            )

    def refusal(self) -> str | None:
        """Why nothing can be relayed now, or None."""
        if self.link.closed:
            return "the link to the supervisor is closed"
        if not self.link.room(1):
            return "the supervisor is behind"
        return None

    @property
    def accepting(self) -> bool:
        return self.refusal() is None

    async def consume(self, batch: Batch) -> None:
        """Count health, then relay what the supervisor needs of ``batch``."""
        if self.health is not None:
            self.health.observe(batch)
        wanted: Batch | None
        if self.central:
            wanted, flags = batch, 0 if self.health is not None else COUNT_HEALTH
        else:
            wanted, flags = self.needs.select(batch), 0
            if wanted is not None and wanted is not batch:
                flags = EXCEPTIONS_ONLY
        if wanted is not None:
            self.link.send_batch(self.receiver, wanted, flags)
            if self._relayed is not None:
                self._relayed.inc(wanted.items)


class AuditRelay:
    """The authenticator's audit sink in a worker: notes go to the supervisor's trail."""

    def __init__(self, link: LinkWriter) -> None:
        self.link = link

    def note_auth_failure(self, reason: str, peer: str | None, name: str | None = None) -> None:
        self.link.send_object(AUDIT, ("note_auth_failure", (reason, peer, name)))

    def note_token_use(self, name: str, requests: int = 1, items: int = 0) -> None:
        self.link.send_object(AUDIT, ("note_token_use", (name, requests, items)))


class LogRelayHandler(logging.Handler):
    """Sends a worker's log records to the supervisor, which writes them with its handlers
    (stderr and ``logging.file``, one writer per file)."""

    def __init__(self, link: LinkWriter, worker: str) -> None:
        super().__init__()
        self.link = link
        self.worker = worker
        self.fallback = logging.StreamHandler(sys.stderr)  # once the supervisor is gone
        self.fallback.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {worker}: "
                                                     "%(name)s: %(message)s"))  # fmt: skip

    def emit(self, record: logging.LogRecord) -> None:
        if self.link.closed:
            self.fallback.handle(record)
            return
        try:
            fields: dict[str, Any] = {
                key: value
                for key, value in record.__dict__.items()
                if key not in ("args", "exc_info", "msg", "message")
                and isinstance(value, str | int | float | bool | type(None))
            }
            fields["msg"] = f"{self.worker}: {record.getMessage()}"
            if record.exc_info and record.exc_info[1] is not None:
                error = record.exc_info[1]
                trace = traceback.format_exception(*record.exc_info)
                fields["exc_text"] = "".join(trace).rstrip("\n")
                fields["_exc_type"] = type(error).__name__  # for the JSON formatter
                fields["_exc_message"] = str(error)
            self.link.send_object(LOG, fields)
        except Exception:  # a log record must never break the code that logs it
            self.handleError(record)


def replay_log(fields: dict[str, Any]) -> None:
    """Log a worker's record in the supervisor, through its loggers and handlers."""
    record = logging.makeLogRecord(fields)
    logger = logging.getLogger(record.name)
    if logger.isEnabledFor(record.levelno):
        logger.handle(record)
