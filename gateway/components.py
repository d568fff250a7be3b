"""Every component the gateway knows: one registry line each.

Adding a component = its module (config model, implementation, ``FACTORY``), one line here,
and its tests; config validation, ``check-config`` and the gateway find it through
:data:`REGISTRY`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from exporters import file, jaeger, store
from exporters.base import Exporter
from exporters.cloudwatch import exporter as cloudwatch
from exporters.elasticsearch import exporter as elasticsearch
from exporters.loki import exporter as loki
from exporters.otlp import exporter as otlp_exporter
from exporters.prometheus import pull as prometheus
from exporters.prometheus import remote_write
from exporters.queue import ExporterQueue
from exporters.sending import queue_around
from exporters.settings import ExporterSettings
from gateway.otlp.batch import Batch
from gateway.pipeline import Emit
from gateway.processors import Processor, redaction, resource, spanmetrics
from gateway.receivers import hostmetrics, syslog
from gateway.receivers import otlp as otlp_receiver
from gateway.registry import Host, Registry
from gateway.selfmetrics import GatewayMetrics

REGISTRY = Registry(
    [
        otlp_receiver.FACTORY,
        hostmetrics.FACTORY,
        syslog.FACTORY,
        resource.FACTORY,
        redaction.FACTORY,
        spanmetrics.FACTORY,
        otlp_exporter.FACTORY,
        jaeger.FACTORY,
        file.FACTORY,
        loki.FACTORY,
        elasticsearch.FACTORY,
        cloudwatch.FACTORY,
        prometheus.FACTORY,
        remote_write.FACTORY,
        store.FACTORY,
    ]
)


async def _nowhere(batch: Batch, source: str | None) -> bool:
    return False


def standalone_host(metrics: GatewayMetrics | None = None, emit: Emit = _nowhere) -> Host:
    """A host for a component made outside a running gateway (tools, tests)."""
    return Host(metrics=metrics or GatewayMetrics(CollectorRegistry()), emit=emit)


def build_exporter(
    component_id: str, config: BaseModel, metrics: GatewayMetrics | None = None
) -> Exporter:
    """The exporter (without its queue) of one ``exporters`` entry."""
    return REGISTRY.exporter(component_id, config, standalone_host(metrics))


def build_processor(
    component_id: str,
    config: BaseModel,
    *,
    emit: Emit = _nowhere,
    metrics: GatewayMetrics | None = None,
) -> Processor:
    """The processor of one ``processors`` entry; ``emit`` takes what it produces."""
    return REGISTRY.processor(component_id, config, standalone_host(metrics, emit))


def build_queue(component_id: str, config: BaseModel, metrics: GatewayMetrics) -> ExporterQueue:
    """The exporter of one ``exporters`` entry in its queue, retry policy and spool."""
    assert isinstance(config, ExporterSettings)  # every exporter's config extends it
    exporter = REGISTRY.exporter(component_id, config, standalone_host(metrics))
    return queue_around(component_id, exporter, config, metrics)
