"""setup_telemetry / shutdown_telemetry, run in a child process (they set global providers)
against the OTLP sink, over gRPC and HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.commands import script
from tests.support.otlp_sink import OtlpSink

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = textwrap.dedent(
    """
    import json, logging, sys
    from opentelemetry import metrics, trace
    from instrumentation import correlation_id, setup_telemetry, shutdown_telemetry

    endpoint, protocol = sys.argv[1], sys.argv[2]
    first = setup_telemetry("setup-test", endpoint=endpoint, protocol=protocol,
                            resource_attributes={"deployment.environment": "test"})
    handlers_after_first = len(logging.getLogger().handlers)
    second = setup_telemetry("setup-test", endpoint=endpoint, protocol=protocol)
    handlers_after_second = len(logging.getLogger().handlers)
    tracer = trace.get_tracer("probe")
    with tracer.start_as_current_span("probe-span") as span, correlation_id("corr-1"):
        logging.getLogger("probe").info("inside span", extra={"k": "v"})
        trace_id = format(span.get_span_context().trace_id, "032x")
    metrics.get_meter("probe").create_counter("probe.count").add(3)
    shutdown_telemetry()
    print(json.dumps(dict(
        same=first is second,
        handlers_first=handlers_after_first,
        handlers_second=handlers_after_second,
        handlers_after_shutdown=len(logging.getLogger().handlers),
        owns=first.owns_providers,
        trace_id=trace_id,
    )))
    """
)


@pytest.fixture
def sink() -> Iterator[OtlpSink]:
    with OtlpSink() as s:
        yield s


def run(endpoint: str, protocol: str, **env: str) -> tuple[dict[str, Any], list[str]]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LOG_"))}
    clean.pop("PYTHONPATH", None)
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, endpoint, protocol],
        env={**clean, "OTEL_METRIC_EXPORT_INTERVAL": "60000", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    data = json.loads(lines[-1])
    assert isinstance(data, dict)
    return data, lines[:-1]


def _attr(attributes: Any, key: str) -> Any:
    for kv in attributes:
        if kv.key == key:
            return kv.value.string_value or kv.value.int_value
    return None


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_setup_exports_all_signals(sink: OtlpSink, protocol: str) -> None:
    endpoint = f"http://{sink.grpc_endpoint}" if protocol == "grpc" else sink.http_endpoint
    data, stdout = run(endpoint, protocol)
    assert data["same"] is True
    assert data["owns"] is True
    assert data["handlers_first"] == data["handlers_second"] == 2  # stdout JSON + OTLP bridge
    assert data["handlers_after_shutdown"] == 1
    transport = "grpc" if protocol == "grpc" else "http"
    assert sink.wait_for(
        lambda s: bool(s.spans() and s.log_records() and s.data_points_count()), 10
    )
    assert {r.transport for r in sink.received} == {transport}
    [span] = [s for s in sink.spans() if s.name == "probe-span"]
    assert span.trace_id.hex() == data["trace_id"]
    [record] = [r for r in sink.log_records() if r.body.string_value == "inside span"]
    assert record.trace_id.hex() == data["trace_id"]
    assert _attr(record.attributes, "correlation_id") == "corr-1"
    assert _attr(record.attributes, "k") == "v"
    traces = [r for r in sink.received if r.signal.value == "traces"]
    resource = traces[0].request.resource_spans[0].resource  # type: ignore[union-attr]
    assert _attr(resource.attributes, "service.name") == "setup-test"
    assert _attr(resource.attributes, "deployment.environment") == "test"
    # stdout carries the JSON line with the same trace id
    [line] = [json.loads(x) for x in stdout if "inside span" in x]
    assert line["trace_id"] == data["trace_id"]
    assert line["service"] == "setup-test"
    assert line["correlation_id"] == "corr-1"


def test_environment_wins_over_arguments(sink: OtlpSink) -> None:
    # the argument points nowhere; OTEL_EXPORTER_OTLP_ENDPOINT points at the sink
    data, _ = run(
        "http://127.0.0.1:9",
        "grpc",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{sink.grpc_endpoint}",
        OTEL_SERVICE_NAME="from-env",
    )
    assert sink.wait_for(lambda s: bool(s.spans()), 10)
    traces = [r for r in sink.received if r.signal.value == "traces"]
    resource = traces[0].request.resource_spans[0].resource  # type: ignore[union-attr]
    assert _attr(resource.attributes, "service.name") == "from-env"
    assert data["same"] is True


def test_reuses_providers_under_opentelemetry_instrument(sink: OtlpSink) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LOG_"))}
    clean.pop("PYTHONPATH", None)
    result = subprocess.run(
        [
            script("opentelemetry-instrument"),
            sys.executable,
            "-c",
            SCRIPT,
            "http://127.0.0.1:9",
            "grpc",
        ],
        env={
            **clean,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{sink.grpc_endpoint}",
            "OTEL_SERVICE_NAME": "wrapped",
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["owns"] is False
    assert data["handlers_first"] == data["handlers_second"] == 2  # stdout JSON + OTLP bridge
    assert sink.wait_for(lambda s: bool(s.log_records()) and bool(s.spans()), 10)
