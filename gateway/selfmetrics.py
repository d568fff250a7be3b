"""The gateway's own metrics, registered on one injected prometheus_client registry.

Every accepted, refused, sent, failed and dropped item is counted here. Tests build their own
registry; nothing touches prometheus_client's global one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gateway.listeners.connection_metrics import ConnectionMetrics

# Seconds: 100 µs (a small request decoded on the event loop) to 10 s (a slow backend).
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
)  # fmt: skip


class GatewayMetrics:
    """Counters and gauges describing the gateway's data path."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.connections = ConnectionMetrics(registry)
        self.receiver_accepted = Counter(
            "otelgate_receiver_accepted_items",
            "Items (spans, data points, log records) accepted from clients.",
            ["signal", "transport"],
            registry=registry,
        )
        self.receiver_refused = Counter(
            "otelgate_receiver_refused_items",
            "Items refused (the client was told to retry or that the data is bad).",
            ["signal", "transport", "reason"],
            registry=registry,
        )
        self.receiver_requests_refused = Counter(
            "otelgate_receiver_refused_requests",
            "Requests refused before their items could be counted (undecodable, too large).",
            ["signal", "transport", "reason"],
            registry=registry,
        )
        self.receiver_request_duration = Histogram(
            "otelgate_receiver_request_duration_seconds",
            "Time the gateway spent on a received request body: decoding, validation and "
            "handing it to the exporter queues (refused requests too; not the network).",
            ["signal", "transport"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.admission_inflight_bytes = Gauge(
            "otelgate_receiver_inflight_bytes",
            "Request bytes (received and decompressed) held by requests being handled.",
            registry=registry,
        )
        self.admission_max_inflight_bytes = Gauge(
            "otelgate_receiver_inflight_limit_bytes",
            "The budget for request bytes in flight (service.admission.max_inflight_bytes).",
            registry=registry,
        )
        self.event_loop_delay = Gauge(
            "otelgate_event_loop_delay_seconds",
            "How late the event loop last woke a 50 ms timer (load shedding compares it with "
            "service.admission.max_loop_delay).",
            registry=registry,
        )
        self.exporter_send_duration = Histogram(
            "otelgate_exporter_send_duration_seconds",
            "Duration of each send attempt of an exporter to its backend (failed ones too).",
            ["exporter", "signal"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.exporter_sent = Counter(
            "otelgate_exporter_sent_items",
            "Items delivered by an exporter.",
            ["exporter", "signal"],
            registry=registry,
        )
        self.exporter_failed = Counter(
            "otelgate_exporter_failed_items",
            "Items an exporter gave up on (permanent error or retries exhausted).",
            ["exporter", "signal"],
            registry=registry,
        )
        self.exporter_dropped = Counter(
            "otelgate_exporter_dropped_items",
            "Items dropped without a delivery attempt (queue full with on_full: drop, shed by "
            "the exporter itself (the store's write budget), or "
            "still queued when shutdown ran out of time).",
            ["exporter", "signal"],
            registry=registry,
        )
        self.exporter_retries = Counter(
            "otelgate_exporter_retries",
            "Delivery attempts that failed with a retryable error and were retried.",
            ["exporter", "signal"],
            registry=registry,
        )
        self.exporter_batch_splits = Counter(
            "otelgate_exporter_batch_splits",
            "Batches (or pieces of one) cut smaller because the backend refused their data or "
            "they were over the exporter's max_request_bytes.",
            ["exporter", "signal"],
            registry=registry,
        )
        self.exporter_adjusted = Counter(
            "otelgate_exporter_adjusted",
            "Changes an exporter made to items so that its backend takes them (a dropped "
            "invalid name, a truncated line...), by reason; the items are still delivered.",
            ["exporter", "reason"],
            registry=registry,
        )
        self.exporter_queue_size = Gauge(
            "otelgate_exporter_queue_size",
            "Items waiting in an exporter's queue (including the ones being sent).",
            ["exporter"],
            registry=registry,
        )
        self.exporter_queue_capacity = Gauge(
            "otelgate_exporter_queue_capacity",
            "Capacity of an exporter's queue, in items.",
            ["exporter"],
            registry=registry,
        )
        self.exporter_queue_bytes = Gauge(
            "otelgate_exporter_queue_bytes",
            "Bytes of the batches in an exporter's memory queue, at the size they arrived with.",
            ["exporter"],
            registry=registry,
        )
        self.exporter_queue_capacity_bytes = Gauge(
            "otelgate_exporter_queue_capacity_bytes",
            "Capacity of an exporter's memory queue, in bytes (sending_queue.max_bytes).",
            ["exporter"],
            registry=registry,
        )
        self.exporter_spool_bytes = Gauge(
            "otelgate_exporter_spool_bytes",
            "Bytes of an exporter's disk spool (sending_queue.storage: disk) on disk.",
            ["exporter"],
            registry=registry,
        )
        self.exporter_spool_capacity_bytes = Gauge(
            "otelgate_exporter_spool_capacity_bytes",
            "Size cap of an exporter's disk spool (sending_queue.max_bytes).",
            ["exporter"],
            registry=registry,
        )
        self.exporter_spool_recovered = Counter(
            "otelgate_exporter_spool_recovered_items",
            "Undelivered items found in an exporter's disk spool at start-up (sent after it).",
            ["exporter", "signal"],
            registry=registry,
        )
        self.exporter_spool_quarantined = Counter(
            "otelgate_exporter_spool_quarantined_files",
            "Damaged spool files moved to the spool's quarantine/ directory.",
            ["exporter"],
            registry=registry,
        )
        self.exporter_spool_corrupt_bytes = Counter(
            "otelgate_exporter_spool_corrupt_bytes",
            "Bytes of spool files that failed their length/CRC checks and were skipped.",
            ["exporter"],
            registry=registry,
        )

    def adjusted_counter(self, exporter: str) -> Callable[[Mapping[str, int]], None]:
        """Counts what ``exporter`` changed in items to fit its backend, by reason."""
        counter = self.exporter_adjusted

        def count(adjusted: Mapping[str, int]) -> None:
            for reason, items in adjusted.items():
                if items:
                    counter.labels(exporter, reason).inc(items)

        return count
