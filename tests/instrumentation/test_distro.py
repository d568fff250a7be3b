"""The distro's environment defaults, and what ``opentelemetry-instrument`` sets up with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from instrumentation.distro import (
    SDK_LOG_HANDLER_ENV,
    OtelgateConfigurator,
    OtelgateDistro,
    apply_defaults,
    default_environment,
)
from tests.support.commands import script

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = {
    "OTEL_TRACES_EXPORTER": "otlp",
    "OTEL_METRICS_EXPORTER": "otlp",
    "OTEL_LOGS_EXPORTER": "otlp",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, {**BASE, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4317"}),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            {
                k: v
                for k, v in {**BASE, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318"}.items()
                if k != "OTEL_EXPORTER_OTLP_PROTOCOL"
            },
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://gw:4317", "OTEL_TRACES_EXPORTER": "console"},
            {k: v for k, v in BASE.items() if k != "OTEL_TRACES_EXPORTER"},
        ),
        # a per-signal protocol: leave the endpoint to each exporter's own default
        ({"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/protobuf"}, BASE),
        # the logging instrumentation will not bridge logs: fall back to the SDK handler
        (
            {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "httpx, logging"},
            {
                **BASE,
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4317",
                SDK_LOG_HANDLER_ENV: "true",
            },
        ),
        (
            {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "*"},
            {
                **BASE,
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4317",
                SDK_LOG_HANDLER_ENV: "true",
            },
        ),
        # the user's explicit choice about the SDK handler stands
        (
            {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "logging", SDK_LOG_HANDLER_ENV: "false"},
            {**BASE, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4317"},
        ),
    ],
)
def test_default_environment(env: dict[str, str], expected: dict[str, str]) -> None:
    assert default_environment(env) == expected


def test_apply_defaults_never_overrides() -> None:
    env = {"OTEL_LOGS_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:1"}
    added = apply_defaults(env)
    assert env["OTEL_LOGS_EXPORTER"] == "none"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://x:1"
    assert "OTEL_LOGS_EXPORTER" not in added
    assert env["OTEL_TRACES_EXPORTER"] == "otlp"


def test_entry_points_resolve_to_our_classes() -> None:
    from importlib.metadata import entry_points

    distros = {ep.name: ep for ep in entry_points(group="opentelemetry_distro")}
    configurators = {ep.name: ep for ep in entry_points(group="opentelemetry_configurator")}
    assert "otelgate" in distros, "otelgate's distro is not registered: pip install -e ."
    assert distros["otelgate"].load() is OtelgateDistro
    assert configurators["otelgate"].load() is OtelgateConfigurator


PROBE = textwrap.dedent(
    """
    import json, logging, os
    from opentelemetry import _logs, metrics, trace
    tp = trace.get_tracer_provider()
    lp = _logs.get_logger_provider()
    mp = metrics.get_meter_provider()
    span_exporters = [
        type(p._batch_processor._exporter).__module__ + ":" + p._batch_processor._exporter._endpoint
        for p in tp._active_span_processor._span_processors
    ]
    log_processors = [
        type(p).__name__ for p in lp._multi_log_record_processor._log_record_processors
    ]
    metric_exporters = [type(r._exporter).__module__ for r in mp._all_metric_readers]
    root = logging.getLogger()
    handlers = [type(h).__module__ + "." + type(h).__name__ for h in root.handlers]
    formatters = [type(h.formatter).__name__ for h in root.handlers if h.formatter]
    env = {k: v for k, v in os.environ.items() if k.startswith("OTEL_")}
    print(json.dumps(dict(
        span_exporters=span_exporters, log_processors=log_processors,
        metric_exporters=metric_exporters, handlers=handlers, formatters=formatters,
        service=tp.resource.attributes.get("service.name"), env=env,
        level=logging.getLevelName(root.level),
    )))
    os._exit(0)  # skip exporting at exit: nothing listens on the default endpoint
    """
)


def run_probe(**env: str) -> dict[str, Any]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "LOG_")) and k != "PYTHONPATH"
    }
    result = subprocess.run(
        [script("opentelemetry-instrument"), sys.executable, "-c", PROBE],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module", autouse=True)
def _needs_entry_points() -> None:
    from importlib.metadata import entry_points

    assert list(entry_points(group="opentelemetry_distro", name="otelgate")), (
        "otelgate's distro is not registered: pip install -e ."
    )


def test_instrument_defaults() -> None:
    data = run_probe(OTEL_SERVICE_NAME="probe")
    assert data["span_exporters"] == [
        "opentelemetry.exporter.otlp.proto.grpc.trace_exporter:localhost:4317"
    ]
    assert data["metric_exporters"] == ["opentelemetry.exporter.otlp.proto.grpc.metric_exporter"]
    assert data["log_processors"] == ["CorrelationIdLogProcessor", "BatchLogRecordProcessor"]
    assert "opentelemetry.instrumentation.logging.handler.LoggingHandler" in data["handlers"]
    assert data["formatters"] == ["JsonFormatter"]
    assert data["service"] == "probe"
    assert data["level"] == "INFO"
    assert SDK_LOG_HANDLER_ENV not in data["env"]


def test_instrument_user_settings_win() -> None:
    data = run_probe(
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://collector.example:9999",
        OTEL_METRICS_EXPORTER="none",
        LOG_FORMAT="text",
        LOG_LEVEL="warning",
    )
    [span_exporter] = data["span_exporters"]
    assert span_exporter.startswith("opentelemetry.exporter.otlp.proto.http.trace_exporter:")
    assert span_exporter.endswith("http://collector.example:9999/v1/traces")
    assert data["metric_exporters"] == []
    assert data["env"]["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    assert data["formatters"] == ["TextFormatter"]
    assert data["level"] == "WARNING"


def test_instrument_falls_back_to_sdk_log_handler() -> None:
    data = run_probe(OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="logging")
    assert data["env"][SDK_LOG_HANDLER_ENV] == "true"
    assert "opentelemetry.sdk._logs._internal.LoggingHandler" in data["handlers"]
    assert not any("instrumentation.logging" in h for h in data["handlers"])
