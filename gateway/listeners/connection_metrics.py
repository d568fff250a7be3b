"""The gateway's metrics about its listeners' connections (open, refused, closed by a timeout).

Part of :class:`gateway.selfmetrics.GatewayMetrics`, on its injected registry. ``listener`` is
the listener's name: ``otlp/http``, ``otlp/grpc`` (``<receiver id>/<protocol>``) or ``admin``.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge


class ConnectionMetrics:
    """Open connections per listener, and the ones it refused or closed itself."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.open = Gauge(
            "otelgate_listener_connections",
            "Connections open on a listener.",
            ["listener"],
            registry=registry,
        )
        self.limit = Gauge(
            "otelgate_listener_connections_limit",
            "The listener's connection cap (max_connections).",
            ["listener"],
            registry=registry,
        )
        self.refused = Counter(
            "otelgate_listener_connections_refused",
            "Connections closed as soon as accepted because the listener was at max_connections "
            "(HTTP listeners; gRPC core refuses them without telling).",
            ["listener"],
            registry=registry,
        )
        self.closed = Counter(
            "otelgate_listener_connections_closed",
            "Connections the gateway closed because the client was too slow, idle or sent "
            "too much header (reason: header_timeout, body_timeout, idle_timeout, "
            "header_too_large). HTTP listeners.",
            ["listener", "reason"],
            registry=registry,
        )

    def watch(self, listener: str, limit: int, count: Callable[[], float]) -> None:
        """Report ``count()`` as the listener's open connections, read at each scrape."""
        self.limit.labels(listener).set(limit)
        self.open.labels(listener).set_function(count)
