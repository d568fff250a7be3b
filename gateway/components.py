"""Builds processors, exporters and their queues from validated configuration."""

from __future__ import annotations

from exporters.base import Exporter
from exporters.file import FileExporter
from exporters.otlp import OtlpExporter, TlsOptions
from exporters.queue import ExporterQueue, RetryPolicy
from gateway.config import (
    ExporterSettings,
    FileExporterConfig,
    OtlpExporterConfig,
    ResourceProcessorConfig,
)
from gateway.processors import Processor
from gateway.processors.resource import AttributeAction, ResourceProcessor
from gateway.selfmetrics import GatewayMetrics


def build_processor(name: str, config: ResourceProcessorConfig) -> Processor:
    """The processor for one ``processors`` entry."""
    actions = [AttributeAction(a.key, a.action, a.value) for a in config.attributes]
    return ResourceProcessor(name, actions)


def build_exporter(config: ExporterSettings) -> Exporter:
    """The exporter (without its queue) for one ``exporters`` entry."""
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
        return OtlpExporter(
            endpoint=config.endpoint,
            protocol=config.protocol,
            compression=config.compression,
            headers=config.headers,
            timeout=config.timeout,
            tls=tls,
        )
    if isinstance(config, FileExporterConfig):
        return FileExporter(
            config.path,
            max_megabytes=config.rotation.max_megabytes,
            max_backups=config.rotation.max_backups,
        )
    raise TypeError(f"no exporter for {type(config).__name__}")


def build_queue(name: str, config: ExporterSettings, metrics: GatewayMetrics) -> ExporterQueue:
    """The exporter wrapped in its bounded queue and retry policy."""
    queue = config.sending_queue
    retry = config.retry_on_failure
    return ExporterQueue(
        name,
        build_exporter(config),
        metrics,
        # sending_queue.enabled: false means no buffering: one batch at a time, the rest refused.
        capacity=queue.queue_size if queue.enabled else 1,
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
    )
