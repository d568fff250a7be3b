"""Delivering one queued batch: retries, refusals and exact counts.

A retryable error is retried with backoff (or as long as the backend asked) until
``max_elapsed_time``. A permanent error is never retried. When the backend blames the data
(:class:`~gateway.errors.RefusedDataError`: a 400, an invalid name, a request too large), the
batch is cut into pieces (:mod:`exporters.splitting`) and each piece is sent on its own, down
to single items: one bad item costs only itself, the others are delivered within the same
call, and the queue worker moves on. An exporter may also report that the backend kept all
but some items (:class:`exporters.base.Refused`). Every item is counted once, as sent or as
failed, and one log line per batch says how many were refused and why.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Literal

from exporters.base import Exporter, Refused, Shed
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


class Delivery:
    """Sends batches through one exporter, retrying, splitting and counting."""

    def __init__(
        self, name: str, exporter: Exporter, metrics: GatewayMetrics, retry: RetryPolicy
    ) -> None:
        self.name = name
        self.exporter = exporter
        self.retry = retry
        self.status = ExporterStatus()
        self._metrics = metrics
        self._rng = random.Random()

    async def deliver(self, batch: Batch) -> None:
        """Deliver ``batch`` or the pieces of it the backend takes; count every item."""
        tally = _Tally()
        pending = [batch]
        while pending:
            piece = pending.pop()
            outcome = await self._send(piece)
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
        self._count(batch.signal, tally)

    async def _send(self, batch: Batch) -> Refused | Shed | BaseException | None:
        """One piece through the retry loop: None if delivered, what the backend refused, or
        the error that ended it (refused data, permanent, retries exhausted, a bug)."""
        started = time.monotonic()
        attempt = 0
        duration = self._metrics.exporter_send_duration.labels(self.name, batch.signal.value)
        while True:
            attempt_started = time.perf_counter()
            try:
                try:
                    return await self.exporter.push(batch)
                finally:
                    duration.observe(time.perf_counter() - attempt_started)
            except RefusedDataError as exc:
                return exc
            except PermanentError as exc:
                return PermanentError(f"permanent error, not retried: {exc}")
            except RetryableError as exc:
                if not self.retry.enabled:
                    return PermanentError(f"retry disabled: {exc}")
                delay = exc.retry_after
                if delay is None:
                    delay = self.retry.delay(attempt, self._rng)
                elapsed = time.monotonic() - started
                limit = self.retry.max_elapsed_time
                if limit and elapsed + delay > limit:
                    return PermanentError(
                        f"gave up after {elapsed:.1f}s and {attempt + 1} tries: {exc}"
                    )
                self.note_error("retrying", str(exc))
                self._metrics.exporter_retries.labels(self.name, batch.signal.value).inc()
                log.warning(
                    "exporter %s: %s; retrying %d %s in %.2fs",
                    self.name, redact_text(str(exc)), batch.items, batch.signal, delay,
                )  # fmt: skip
                await asyncio.sleep(delay)
                attempt += 1
            except Exception as exc:  # a bug in an exporter: never retry blindly, never hide
                log.exception("exporter %s failed unexpectedly", self.name)
                return PermanentError(f"unexpected {type(exc).__name__}: {exc}")

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
