"""An exporter wrapped in what sends for it: its bounded queue, retry policy and disk spool,
built from the ``sending_queue`` and ``retry_on_failure`` settings every exporter has."""

from __future__ import annotations

from pathlib import Path

from exporters.base import Exporter
from exporters.merging import MergeLimits
from exporters.queue import ExporterQueue
from exporters.retry import RetryPolicy
from exporters.settings import ExporterSettings, QueueSettings
from exporters.spool import Partitioning, Spool, default_directory
from gateway.selfmetrics import GatewayMetrics


def queue_around(
    name: str,
    exporter: Exporter,
    config: ExporterSettings,
    metrics: GatewayMetrics,
    *,
    partition: str | None = None,
    workers: int = 1,
) -> ExporterQueue:
    """``exporter`` (the one ``name`` of the config) in its bounded queue and retry policy.

    With ``service.workers`` > 1 every process passes ``workers`` and its own ``partition``
    (:func:`exporters.spool.worker_partition` or ``SUPERVISOR_PARTITION``) for the partition of
    a disk spool it writes to (see :mod:`exporters.spool_partitions`).
    """
    queue = config.sending_queue
    retry = config.retry_on_failure
    return ExporterQueue(
        name,
        exporter,
        metrics,
        # sending_queue.enabled: false means no buffering: one batch at a time, the rest refused.
        capacity=queue.queue_size if queue.enabled else 1,
        max_bytes=queue.byte_limit,
        num_consumers=queue.num_consumers if queue.enabled else 1,
        on_full=queue.on_full,
        retry=RetryPolicy(
            enabled=retry.enabled,
            initial_interval=retry.initial_interval,
            max_interval=retry.max_interval,
            multiplier=retry.multiplier,
            randomization_factor=retry.randomization_factor,
            max_elapsed_time=retry.max_elapsed_time,
        ),
        spool=build_spool(name, queue, partition=partition, workers=workers),
        merge=MergeLimits(queue.merge_max_items, queue.merge_max_bytes, queue.merge_timeout)
        if queue.merge_batches
        else None,
    )


def build_spool(
    name: str, queue: QueueSettings, *, partition: str | None = None, workers: int = 1
) -> Spool | None:
    """The disk spool of ``sending_queue.storage: disk`` (one directory per exporter, in it one
    partition per process with several workers); it adopts orphaned partitions when it opens."""
    if queue.storage != "disk":
        return None
    layout = Partitioning(Path(queue.directory or default_directory(name)), partition, workers)
    return Spool(layout.directory, max_bytes=queue.byte_limit, partitioning=layout)
