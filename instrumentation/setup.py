"""Programmatic telemetry setup for apps that do not run under ``opentelemetry-instrument``.

Arguments are defaults: the standard ``OTEL_*`` environment variables, when set, win
(the same rule the distro follows), so operators can re-point an app without a code change.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from opentelemetry import metrics, trace
from opentelemetry._logs import get_logger_provider, set_logger_provider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs import LoggingHandler as SdkLoggingHandler
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    ConsoleLogRecordExporter,
    LogRecordExporter,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from instrumentation.logs import CorrelationIdLogProcessor, configure_logging

Signal = Literal["traces", "metrics", "logs"]
PROTOCOLS = ("grpc", "http/protobuf")

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_handles: TelemetryHandles | None = None


@dataclass(frozen=True)
class TelemetryHandles:
    """What setup_telemetry set up (or found already set up)."""

    service_name: str
    resource: Resource
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider
    log_handler: logging.Handler | None
    """The stdlib-logging -> OTLP bridge on the root logger (None if one was there already)."""
    stdout_handler: logging.Handler
    owns_providers: bool
    """False when global SDK providers already existed (e.g. under opentelemetry-instrument)."""


def setup_telemetry(
    service_name: str,
    *,
    endpoint: str | None = None,
    protocol: str | None = None,
    resource_attributes: dict[str, Any] | None = None,
) -> TelemetryHandles:
    """Set up traces, metrics and logs over OTLP plus JSON logs on stdout. Idempotent.

    ``endpoint`` is the collector base address (``http://host:4317`` for grpc,
    ``http://host:4318`` for http/protobuf); ``protocol`` is ``grpc`` (default) or
    ``http/protobuf``. A second call returns the first call's handles.
    """
    global _handles
    with _lock:
        if _handles is not None:
            if service_name != _handles.service_name:
                _log.warning(
                    "setup_telemetry already ran for %r; ignoring %r",
                    _handles.service_name,
                    service_name,
                )
            return _handles
        _handles = _setup(service_name, endpoint, protocol, resource_attributes or {})
        return _handles


def shutdown_telemetry(timeout_millis: int = 10_000) -> None:
    """Flush and shut down what setup_telemetry created; remove its logging handlers."""
    global _handles
    with _lock:
        handles, _handles = _handles, None
    if handles is None:
        return
    root = logging.getLogger()
    if handles.log_handler is not None:
        root.removeHandler(handles.log_handler)
    if not handles.owns_providers:
        return
    handles.tracer_provider.force_flush(timeout_millis)
    handles.logger_provider.force_flush(timeout_millis)
    handles.meter_provider.force_flush(timeout_millis)
    handles.tracer_provider.shutdown()
    handles.logger_provider.shutdown()
    handles.meter_provider.shutdown(timeout_millis=timeout_millis)


def build_resource(service_name: str, attributes: Mapping[str, Any]) -> Resource:
    """Detected resource + arguments, with OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME on top."""
    base = {**attributes, "service.name": service_name}
    env = OTELResourceDetector().detect()
    return Resource.create({**base, **env.attributes})


def _setup(
    service_name: str,
    endpoint: str | None,
    protocol: str | None,
    attributes: dict[str, Any],
) -> TelemetryHandles:
    existing = trace.get_tracer_provider()
    existing_logs = get_logger_provider()
    existing_metrics = metrics.get_meter_provider()
    if (
        isinstance(existing, TracerProvider)
        and isinstance(existing_logs, LoggerProvider)
        and isinstance(existing_metrics, MeterProvider)
    ):
        # Already configured (opentelemetry-instrument, or the host app): reuse, don't fight.
        return TelemetryHandles(
            service_name=service_name,
            resource=existing.resource,
            tracer_provider=existing,
            meter_provider=existing_metrics,
            logger_provider=existing_logs,
            log_handler=_bridge_logging(existing_logs),
            stdout_handler=configure_logging(),
            owns_providers=False,
        )

    resource = build_resource(service_name, attributes)
    tracer_provider = TracerProvider(resource=resource)
    for span_exporter in _exporters("traces", endpoint, protocol):
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    readers: list[MetricReader] = [
        PeriodicExportingMetricReader(metric_exporter)
        for metric_exporter in _exporters("metrics", endpoint, protocol)
    ]
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(CorrelationIdLogProcessor())
    for log_exporter in _exporters("logs", endpoint, protocol):
        logger_provider.add_log_record_processor(BatchLogRecordProcessor(log_exporter))

    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    set_logger_provider(logger_provider)
    return TelemetryHandles(
        service_name=service_name,
        resource=resource,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
        log_handler=_bridge_logging(logger_provider),
        stdout_handler=configure_logging(service_name=resource_service(resource)),
        owns_providers=True,
    )


def resource_service(resource: Resource) -> str | None:
    """service.name of a resource, as a string."""
    value = resource.attributes.get("service.name")
    return str(value) if value else None


def _bridge_logging(provider: LoggerProvider) -> logging.Handler | None:
    """Add a stdlib -> OTLP handler on the root logger unless one is already there."""
    root = logging.getLogger()
    handler_types: tuple[type[logging.Handler], ...] = (SdkLoggingHandler,)
    try:
        from opentelemetry.instrumentation.logging.handler import LoggingHandler
    except ImportError:  # the logging instrumentation is optional at run time
        handler: logging.Handler | None = None
    else:
        handler_types += (LoggingHandler,)
        handler = LoggingHandler(logger_provider=provider)
    if any(isinstance(h, handler_types) for h in root.handlers):
        return None
    if handler is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            handler = SdkLoggingHandler(logger_provider=provider)
    root.addHandler(handler)
    return handler


def _signal_protocol(signal: Signal, protocol: str | None) -> str:
    chosen = (
        os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or protocol
        or "grpc"
    ).strip()
    if chosen not in PROTOCOLS:
        raise ValueError(f"unsupported OTLP protocol {chosen!r} (use one of {PROTOCOLS})")
    return chosen


def _signal_endpoint(signal: Signal, endpoint: str | None, protocol: str) -> str | None:
    if os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    ):
        return None  # the exporter reads the environment itself
    if endpoint is None:
        return None
    if protocol == "grpc":
        return endpoint
    return f"{endpoint.rstrip('/')}/v1/{signal}"


def _exporters(signal: Signal, endpoint: str | None, protocol: str | None) -> list[Any]:
    """The exporters OTEL_<SIGNAL>_EXPORTER names (otlp by default; console; none)."""
    names = os.environ.get(f"OTEL_{signal.upper()}_EXPORTER", "otlp")
    out: list[Any] = []
    for raw in names.split(","):
        name = raw.strip().lower()
        if name in ("", "none"):
            continue
        if name == "console":
            out.append(_console_exporter(signal))
        elif name in ("otlp", "otlp_proto_grpc", "otlp_proto_http"):
            chosen = _signal_protocol(signal, protocol)
            if name != "otlp":
                chosen = "grpc" if name == "otlp_proto_grpc" else "http/protobuf"
            out.append(_otlp_exporter(signal, chosen, _signal_endpoint(signal, endpoint, chosen)))
        else:
            _log.warning("unknown %s exporter %r ignored", signal, name)
    return out


def _console_exporter(signal: Signal) -> SpanExporter | MetricExporter | LogRecordExporter:
    if signal == "traces":
        return ConsoleSpanExporter()
    if signal == "metrics":
        return ConsoleMetricExporter()
    return ConsoleLogRecordExporter()


def _otlp_exporter(signal: Signal, protocol: str, endpoint: str | None) -> Any:
    kwargs: dict[str, Any] = {"endpoint": endpoint} if endpoint else {}
    if protocol == "grpc":
        if signal == "traces":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            return OTLPSpanExporter(**kwargs)
        if signal == "metrics":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter,
            )

            return OTLPMetricExporter(**kwargs)
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        return OTLPLogExporter(**kwargs)
    if signal == "traces":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpSpanExporter,
        )

        return HttpSpanExporter(**kwargs)
    if signal == "metrics":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HttpMetricExporter,
        )

        return HttpMetricExporter(**kwargs)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import (
        OTLPLogExporter as HttpLogExporter,
    )

    return HttpLogExporter(**kwargs)
