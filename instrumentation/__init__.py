"""What instrumented services run: the opentelemetry-instrument distro, correlated JSON logs,
request middleware with masking, and programmatic setup (``setup_telemetry``)."""

from __future__ import annotations

from instrumentation.logs import (
    CorrelationIdLogProcessor,
    JsonFormatter,
    TextFormatter,
    configure_logging,
    correlation_id,
    get_correlation_id,
    structlog_processor,
    use_root_logging_for_uvicorn,
)
from instrumentation.masking import MaskingConfig
from instrumentation.middleware import RequestLoggingMiddleware
from instrumentation.setup import TelemetryHandles, setup_telemetry, shutdown_telemetry

__all__ = [
    "CorrelationIdLogProcessor",
    "JsonFormatter",
    "MaskingConfig",
    "RequestLoggingMiddleware",
    "TelemetryHandles",
    "TextFormatter",
    "configure_logging",
    "correlation_id",
    "get_correlation_id",
    "setup_telemetry",
    "shutdown_telemetry",
    "structlog_processor",
    "use_root_logging_for_uvicorn",
]
