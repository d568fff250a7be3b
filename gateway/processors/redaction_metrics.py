"""The redaction processors' counters: one pair per metrics registry, shared by every
``redaction`` processor registered on it."""

from __future__ import annotations

import weakref

from prometheus_client import CollectorRegistry, Counter

_COUNTERS: weakref.WeakKeyDictionary[CollectorRegistry, tuple[Counter, Counter]] = (
    weakref.WeakKeyDictionary()
)


def redaction_counters(registry: CollectorRegistry) -> tuple[Counter, Counter]:
    """The registry's ``masked`` and ``dropped`` counters (created once per registry)."""
    counters = _COUNTERS.get(registry)
    if counters is None:
        masked = Counter(
            "otelgate_redaction_masked",
            "Values (or parts of values) a redaction processor masked, by rule.",
            ["processor", "rule"],
            registry=registry,
        )
        dropped = Counter(
            "otelgate_redaction_dropped",
            "Attributes a redaction processor dropped, by reason.",
            ["processor", "reason"],
            registry=registry,
        )
        counters = _COUNTERS[registry] = (masked, dropped)
    return counters
