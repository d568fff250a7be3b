"""The audit trail's own metrics, on the gateway's injected registry, and how its failures
are reported (counted, logged at most once a minute, shown in its rotation status)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter

from gateway.logfiles.status import Step, Tracker

log = logging.getLogger("otelgate.audit")

ERROR_LOG_INTERVAL = 60.0


class AuditMetrics:
    """``otelgate_audit_entries_total{action}`` and ``otelgate_audit_write_errors_total``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.entries = Counter(
            "otelgate_audit_entries", "Audit entries written.", ["action"], registry=registry
        )
        self.write_errors = Counter(
            "otelgate_audit_write_errors",
            "Audit entries that could not be written, and failed rotations and fsyncs.",
            registry=registry,
        )


class Failures:
    """A trail's failures: ``write_errors``, the status ``tracker``'s ``step`` (a failed
    write makes the file critical), and an ERROR line at most once a minute."""

    def __init__(self, path: Path, metrics: AuditMetrics | None, tracker: Tracker) -> None:
        self.path, self.metrics, self.tracker = path, metrics, tracker
        self._unlogged = 0
        self._last_log = -ERROR_LOG_INTERVAL

    def __call__(self, what: str, exc: BaseException, step: Step = "write") -> None:
        if self.metrics is not None:
            self.metrics.write_errors.inc()
        self.tracker.failed(step, exc)
        self._unlogged += 1
        now = time.monotonic()
        if now - self._last_log >= ERROR_LOG_INTERVAL:
            log.error(
                "audit trail %s: %s failed: %s (%d failure(s) since the last report)",
                self.path, what, exc, self._unlogged,
            )  # fmt: skip
            self._last_log, self._unlogged = now, 0
