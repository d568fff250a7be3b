"""Builds processors, exporters and their queues from validated configuration."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from exporters.base import Exporter
from exporters.file import FileExporter
from exporters.jaeger import JaegerExporter
from exporters.loki import LokiExporter, StreamMapping
from exporters.merging import MergeLimits
from exporters.otlp import OtlpExporter, TlsOptions
from exporters.prometheus import PrometheusExporter
from exporters.queue import ExporterQueue
from exporters.remote_write import RemoteWriteExporter
from exporters.retry import RetryPolicy
from exporters.spool import Spool, default_directory
from gateway.config import (
    ExporterSettings,
    FileExporterConfig,
    JaegerExporterConfig,
    LokiExporterConfig,
    OtlpExporterConfig,
    ResourceProcessorConfig,
)
from gateway.config_models import (
    PrometheusExporterConfig,
    PrometheusRemoteWriteExporterConfig,
    QueueSettings,
    SpanMetricsProcessorConfig,
)
from gateway.processors import Processor
from gateway.processors.resource import AttributeAction, ResourceProcessor
from gateway.processors.spanmetrics import SpanMetricsProcessor
from gateway.selfmetrics import GatewayMetrics
from gateway.signals import Emit


def build_processor(
    name: str,
    config: ResourceProcessorConfig | SpanMetricsProcessorConfig,
    *,
    emit: Emit | None = None,
    metrics: GatewayMetrics | None = None,
) -> Processor:
    """The processor for one ``processors`` entry. ``emit`` feeds what a processor produces
    (span metrics) back into the pipelines; ``metrics`` holds the gateway's own counters."""
    if isinstance(config, SpanMetricsProcessorConfig):
        return SpanMetricsProcessor(
            name,
            buckets=config.buckets,
            flush_interval=config.flush_interval,
            max_operations_per_service=config.max_operations_per_service,
            max_services=config.max_services,
            emit=emit,
            registry=metrics.registry if metrics is not None else None,
        )
    actions = [AttributeAction(a.key, a.action, a.value) for a in config.attributes]
    return ResourceProcessor(name, actions)


def build_exporter(
    config: ExporterSettings, name: str = "", metrics: GatewayMetrics | None = None
) -> Exporter:
    """The exporter (without its queue) for one ``exporters`` entry; ``name`` is its id and
    ``metrics`` the gateway's own, for exporters that count things of their own."""
    registry = metrics.registry if metrics is not None else None
    if isinstance(config, PrometheusExporterConfig):
        return PrometheusExporter(
            name or "prometheus",
            path=config.path,
            metric_expiration=config.metric_expiration,
            max_series_per_metric=config.max_series_per_metric,
            created_series=config.created_series,
            registry=registry,
        )
    if isinstance(config, PrometheusRemoteWriteExporterConfig):
        return RemoteWriteExporter(
            config.endpoint,
            name=name or "prometheusremotewrite",
            headers=config.headers,
            timeout=config.timeout,
            metric_expiration=config.metric_expiration,
            created_series=config.created_series,
            max_request_bytes=config.max_request_bytes,
            registry=registry,
        )
    if isinstance(config, OtlpExporterConfig):
        tls = None
        if config.tls is not None:
            tls = TlsOptions(
                insecure=config.tls.insecure,
                ca_file=config.tls.ca_file,
                cert_file=config.tls.cert_file,
                key_file=config.tls.key_file,
                insecure_skip_verify=config.tls.insecure_skip_verify,
            )
        otlp = OtlpExporter(
            endpoint=config.endpoint,
            protocol=config.protocol,
            compression=config.compression,
            headers=config.headers,
            timeout=config.timeout,
            tls=tls,
            max_request_bytes=config.max_request_bytes,
        )
        return JaegerExporter(otlp) if isinstance(config, JaegerExporterConfig) else otlp
    if isinstance(config, LokiExporterConfig):
        mapping = StreamMapping(
            resource_labels=config.resource_labels,
            level_label=config.level_label,
            line_format=config.line_format,
            max_line_bytes=config.max_line_size,
        )
        return LokiExporter(
            config.endpoint,
            protocol=config.protocol,
            format=config.format,
            compression=config.compression,
            mapping=mapping,
            tenant_id=config.tenant_id,
            headers=config.headers,
            timeout=config.timeout,
            max_request_bytes=config.max_request_bytes,
            on_adjusted=_adjusted_counter(name or "loki", metrics),
        )
    if isinstance(config, FileExporterConfig):
        return FileExporter(
            config.path,
            max_megabytes=config.rotation.max_megabytes,
            max_backups=config.rotation.max_backups,
        )
    raise TypeError(f"no exporter for {type(config).__name__}")


def _adjusted_counter(
    name: str, metrics: GatewayMetrics | None
) -> Callable[[Mapping[str, int]], None] | None:
    """Counts what an exporter changed in items to fit its backend, by reason."""
    if metrics is None:
        return None
    counter = metrics.exporter_adjusted

    def count(adjusted: Mapping[str, int]) -> None:
        for reason, items in adjusted.items():
            if items:
                counter.labels(name, reason).inc(items)

    return count


def build_queue(name: str, config: ExporterSettings, metrics: GatewayMetrics) -> ExporterQueue:
    """The exporter wrapped in its bounded queue and retry policy."""
    queue = config.sending_queue
    retry = config.retry_on_failure
    return ExporterQueue(
        name,
        build_exporter(config, name, metrics),
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
        spool=build_spool(name, queue),
        merge=MergeLimits(queue.merge_max_items, queue.merge_max_bytes, queue.merge_timeout)
        if queue.merge_batches
        else None,
    )


def build_spool(name: str, queue: QueueSettings) -> Spool | None:
    """The disk spool of ``sending_queue.storage: disk`` (one directory per exporter)."""
    if queue.storage != "disk":
        return None
    directory = queue.directory or default_directory(name)
    return Spool(directory, max_bytes=queue.byte_limit)
