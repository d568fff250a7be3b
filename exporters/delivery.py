"""Delivering one queued batch: retries, refusals and exact counts.

A retryable error is retried with backoff (or as long as the backend asked) until
``max_elapsed_time``. A permanent error is never retried. When the backend blames the data
(:class:`~gateway.errors.RefusedDataError`: a 400, an invalid name, a request too large), the
batch is cut into pieces (:mod:`exporters.splitting`) and each piece is sent on its own, down
to single items: one bad item costs only itself, the others are delivered within the same
call, and the queue worker moves on. An exporter may also report that the backend kept all
but some items (:class:`exporters.base.Refused`), or that it kept some and asked for the
others again (:class:`exporters.base.Partial`, e.g. Elasticsearch throttling single documents
of a bulk request): only those are retried, on the same backoff and ``max_elapsed_time`` clock.
Every item is counted once, as sent or as failed, and one log line per batch says how many
were refused and why. A delivery cut short by shutdown counts what it settled (the queue
counts the rest as dropped), unless the batch comes from the disk spool, which sends it again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Literal

from exporters.base import Exporter, Partial, Refused, Shed
from exporters.retry import RetryPolicy
from exporters.splitting import split_batch
from gateway.errors import PermanentError, RefusedDataError, RetryableError
from gateway.otlp.batch import Batch, Signal
from gateway.redact import redact_text
from gateway.selfmetrics import GatewayMetrics

log = logging.getLogger("otelgate.exporter")

MAX_REASONS = 3  # distinct refusal reasons quoted in one log line


@dataclass(slots=True)
class ExporterStatus:
    """What the health endpoints say about one exporter."""

    state: Literal["ok", "retrying", "failed"] = "ok"
    last_error: str | None = None
    last_error_at: float | None = None  # wall clock, seconds
    last_success_at: float | None = None


@dataclass(slots=True)
class _Tally:
    """What became of one queued batch."""

    sent: int = 0
    failed: int = 0
    dropped: int = 0  # shed by the exporter itself
    splits: int = 0
    reasons: list[str] = field(default_factory=list)

    def refuse(self, items: int, reason: str) -> None:
        self.failed += items
        if reason not in self.reasons and len(self.reasons) < MAX_REASONS:
            self.reasons.append(reason)

    @property
    def settled(self) -> int:
        """Items counted so far, as sent, failed or dropped."""
        return self.sent + self.failed + self.dropped


class Delivery:
    """Sends batches through one exporter, retrying, splitting and counting."""

    def __init__(
        self,
        name: str,
        exporter: Exporter,
        metrics: GatewayMetrics,
        retry: RetryPolicy,
        *,
        replayed: bool = False,
    ) -> None:
        self.name = name
        self.exporter = exporter
        self.retry = retry
        self.status = ExporterStatus()
        # A batch cut short by shutdown is sent again whole from the disk spool (replayed):
        # nothing of it is counted now. Otherwise what was settled before is counted, and
        # kept here so that the queue counts only the rest as dropped.
        self.replayed = replayed
        self.settled_when_cancelled: dict[Batch, int] = {}
        self._metrics = metrics
        self._rng = random.Random()

    async def deliver(self, batch: Batch) -> None:
        """Deliver ``batch`` or the pieces of it the backend takes; count every item."""
        tally = _Tally()
        try:
            await self._deliver(batch, tally)
        except asyncio.CancelledError:
            if not self.replayed and tally.settled:
                self.settled_when_cancelled[batch] = tally.settled
                self._count(batch.signal, tally)
            raise
        self._count(batch.signal, tally)

    async def _deliver(self, batch: Batch, tally: _Tally) -> None:
        pending = [batch]
        while pending:
            piece, outcome = await self._send(pending.pop(), tally)
            if isinstance(outcome, RefusedDataError) and piece.items > 1:
                tally.splits += 1
                pending.extend(reversed(split_batch(piece, outcome.parts)))
            elif isinstance(outcome, BaseException):
                tally.refuse(piece.items, str(outcome))
            elif isinstance(outcome, Shed):  # by design: dropped, not a failure
                shed = min(outcome.items, piece.items)
                tally.sent += piece.items - shed
                tally.dropped += shed
            elif outcome is not None:  # the backend kept all but some items
                refused = min(outcome.items, piece.items)  # a backend may over-report
                tally.sent += piece.items - refused
                tally.refuse(refused, outcome.reason)
            else:
                tally.sent += piece.items

    async def _send(
        self, batch: Batch, tally: _Tally
    ) -> tuple[Batch, Refused | Shed | BaseException | None]:
        """One piece through the retry loop. Returns what is left of it (a :class:`Partial`
        answer leaves only its remainder, the rest counted in ``tally``) and how that ended:
        None if delivered, what the backend refused, or the error that ended it (refused
        data, permanent, retries exhausted, a bug)."""
        started = time.monotonic()
        attempt = 0
        duration = self._metrics.exporter_send_duration.labels(self.name, batch.signal.value)
        while True:
            attempt_started = time.perf_counter()
            try:
                try:
                    outcome = await self.exporter.push(batch)
                finally:
                    duration.observe(time.perf_counter() - attempt_started)
                if not isinstance(outcome, Partial):
                    return batch, outcome
                if not _fits(batch, outcome):
                    return batch, PermanentError(
                        f"exporter bug: asked to resend {outcome.remainder.items} "
                        f"{outcome.remainder.signal} of a batch of {batch.items} {batch.signal}"
                    )
                batch, error = self._partly_done(batch, outcome, tally)
                if not batch.items:
                    return batch, None
            except RefusedDataError as exc:
                return batch, exc
            except PermanentError as exc:
                return batch, PermanentError(f"permanent error, not retried: {exc}")
            except RetryableError as exc:
                error = exc
            except Exception as exc:  # a bug in an exporter: never retry blindly, never hide
                log.exception("exporter %s failed unexpectedly", self.name)
                return batch, PermanentError(f"unexpected {type(exc).__name__}: {exc}")
            if not self.retry.enabled:
                return batch, PermanentError(f"retry disabled: {error}")
            delay = error.retry_after
            if delay is None:
                delay = self.retry.delay(attempt, self._rng)
            elapsed = time.monotonic() - started
            limit = self.retry.max_elapsed_time
            if limit and elapsed + delay > limit:
                return batch, PermanentError(
                    f"gave up after {elapsed:.1f}s and {attempt + 1} tries: {error}"
                )
            self.note_error("retrying", str(error))
            self._metrics.exporter_retries.labels(self.name, batch.signal.value).inc()
            log.warning(
                "exporter %s: %s; retrying %d %s in %.2fs",
                self.name, redact_text(str(error)), batch.items, batch.signal, delay,
            )  # fmt: skip
            await asyncio.sleep(delay)
            attempt += 1

    @staticmethod
    def _partly_done(batch: Batch, outcome: Partial, tally: _Tally) -> tuple[Batch, RetryableError]:
        """Count what a :class:`Partial` answer settled; the remainder and its error are left."""
        remainder = outcome.remainder
        refused = max(0, min(outcome.refused, batch.items - remainder.items))
        if refused:
            tally.refuse(refused, outcome.reason)
        tally.sent += max(0, batch.items - remainder.items - refused)
        return remainder, outcome.error

    def _count(self, signal: Signal, tally: _Tally) -> None:
        metrics = self._metrics
        if tally.splits:
            metrics.exporter_batch_splits.labels(self.name, signal.value).inc(tally.splits)
        if tally.sent:
            metrics.exporter_sent.labels(self.name, signal.value).inc(tally.sent)
            self.status.last_success_at = time.time()
        if tally.dropped:
            metrics.exporter_dropped.labels(self.name, signal.value).inc(tally.dropped)
        if not tally.failed:
            self.status.state = "ok"
            return
        why = "; ".join(tally.reasons)
        total = tally.sent + tally.failed
        self.fail(signal, tally.failed, f"{tally.failed} of {total} {signal} refused: {why}")
        if tally.sent:
            self.status.state = "ok"  # the backend takes data; the refusal stays last_error

    def note_error(self, state: Literal["retrying", "failed"], message: str) -> None:
        """Record the latest problem for /health."""
        self.status.state = state
        self.status.last_error = redact_text(message)  # shown by /health
        self.status.last_error_at = time.time()

    def fail(self, signal: Signal, items: int, why: str) -> None:
        """Count ``items`` as failed for good and log why."""
        self.note_error("failed", why)
        self._metrics.exporter_failed.labels(self.name, signal.value).inc(items)
        log.error("exporter %s: %s", self.name, redact_text(why))


def _fits(batch: Batch, outcome: Partial) -> bool:
    """Whether a :class:`Partial` answer's remainder can be part of ``batch``."""
    remainder = outcome.remainder
    return remainder.signal is batch.signal and 0 <= remainder.items <= batch.items
