"""The audit trail's own metrics, on the gateway's injected registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


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
