"""The otelgate distro and configurator for ``opentelemetry-instrument``.

``opentelemetry-instrument`` first calls the distro's ``configure`` (we only fill in
environment defaults, never overriding what the user set), then the configurator (the
SDK's standard env-driven setup, plus our correlation-id log processor, the JSON
formatter on stdout, uvicorn's loggers routed to the root logger and unhandled exceptions
logged with their span's trace id), then every installed instrumentor.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, MutableMapping
from importlib.metadata import entry_points
from typing import Any

from opentelemetry.instrumentation.distro import (  # type: ignore[attr-defined]
    BaseDistro,  # (the module is marked untyped as a whole)
)
from opentelemetry.sdk._configuration import _OTelSDKConfigurator

from instrumentation import unhandled
from instrumentation.logs import CorrelationIdLogProcessor, configure_logging
from instrumentation.uvicorn_logs import patch_uvicorn

_log = logging.getLogger(__name__)

DEFAULT_GRPC_ENDPOINT = "http://localhost:4317"
DEFAULT_HTTP_ENDPOINT = "http://localhost:4318"
SDK_LOG_HANDLER_ENV = "OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED"
_SIGNALS = ("TRACES", "METRICS", "LOGS")


def _logging_instrumentor_will_bridge(env: Mapping[str, str]) -> bool:
    """True when opentelemetry-instrumentation-logging will install its OTLP log handler."""
    if not list(entry_points(group="opentelemetry_instrumentor", name="logging")):
        return False
    disabled = {x.strip() for x in env.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",")}
    if "logging" in disabled or "*" in disabled:
        return False
    return env.get("OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION", "true").strip().lower() == "true"


def default_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The OTEL_* defaults the distro would add to ``env`` (keys already in ``env`` excluded).

    otlp exporters for all three signals over grpc to localhost:4317 (4318 when the protocol
    is http/protobuf), and log export switched on.
    """
    defaults: dict[str, str] = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
    }
    protocol = (env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc").strip()
    per_signal = any(env.get(f"OTEL_EXPORTER_OTLP_{s}_PROTOCOL") for s in _SIGNALS)
    if not per_signal:
        # Explicit scheme: "http://" tells the grpc exporter to use a plaintext channel.
        if protocol == "grpc":
            defaults["OTEL_EXPORTER_OTLP_ENDPOINT"] = DEFAULT_GRPC_ENDPOINT
        elif protocol == "http/protobuf":
            defaults["OTEL_EXPORTER_OTLP_ENDPOINT"] = DEFAULT_HTTP_ENDPOINT
    # Log export. opentelemetry-instrumentation-logging (a dependency) installs the OTLP
    # log handler itself, and skips it with a warning when the SDK's deprecated handler is
    # switched on by OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED=true. So that variable
    # is only our fallback for when the logging instrumentation will not bridge logs.
    if not _logging_instrumentor_will_bridge({**defaults, **env}):
        defaults[SDK_LOG_HANDLER_ENV] = "true"
    return {k: v for k, v in defaults.items() if k not in env}


def apply_defaults(env: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set the defaults into ``env`` (os.environ) without overriding; returns what was set."""
    target: MutableMapping[str, str] = os.environ if env is None else env
    added = default_environment(target)
    for key, value in added.items():
        target.setdefault(key, value)
    return added


class OtelgateDistro(BaseDistro):
    """Fills in OTLP defaults for traces, metrics and logs; user OTEL_* settings win."""

    def _configure(self, **kwargs: Any) -> None:
        apply_defaults()


class OtelgateConfigurator(_OTelSDKConfigurator):
    """The SDK configurator plus the correlation-id log processor, JSON stdout logs, uvicorn's
    logs through the root logger and unhandled exceptions as log records."""

    def _configure(self, **kwargs: Any) -> None:
        kwargs.setdefault("log_record_processors", [CorrelationIdLogProcessor()])
        with warnings.catch_warnings():
            # Only reached when the user (or our fallback) chose the SDK's log handler.
            warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*Logging")
            super()._configure(**kwargs)
        configure_logging()
        patch_uvicorn()
        unhandled.install()
