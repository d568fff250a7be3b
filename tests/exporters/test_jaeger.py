"""JaegerExporter: traces as OTLP to a Jaeger collector (here an OTLP sink), gRPC or HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from exporters.jaeger import JaegerExporter, JaegerExporterConfig
from gateway.components import build_exporter
from gateway.config.issues import ConfigError
from gateway.config.loading import parse_config
from gateway.errors import PermanentError, RetryableError
from gateway.otlp.batch import Batch, Signal
from tests.support.otlp_samples import sample_request
from tests.support.otlp_sink import OtlpSink


@pytest.fixture
def sink() -> Iterator[OtlpSink]:
    with OtlpSink() as running:
        yield running


def _config(settings: str, pipeline: str = "traces") -> str:
    return f"""
receivers:
  otlp: {{protocols: {{grpc: null}}}}
exporters:
  jaeger:
{settings}
service:
  pipelines:
    {pipeline}: {{receivers: [otlp], exporters: [jaeger]}}
"""


def _exporter(settings: str) -> JaegerExporter:
    config = parse_config(_config(settings))
    exporter = build_exporter("jaeger", config.exporters["jaeger"])
    assert isinstance(exporter, JaegerExporter)
    return exporter


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
async def test_spans_arrive_unchanged(sink: OtlpSink, protocol: str) -> None:
    endpoint = sink.grpc_endpoint if protocol == "grpc" else sink.http_endpoint
    exporter = _exporter(
        f"    protocol: {protocol}\n    endpoint: {endpoint}\n    compression: gzip\n"
        "    headers: {x-team: obs}"
    )
    await exporter.start()
    try:
        batch = Batch.from_request(Signal.TRACES, sample_request(Signal.TRACES, 6))
        await exporter.push(batch)
        with pytest.raises(PermanentError, match="traces only"):
            await exporter.push(Batch.from_request(Signal.LOGS, sample_request(Signal.LOGS)))
        sink.fail_next(1, http_status=429, retry_after="2", retry_delay=2.0)
        with pytest.raises(RetryableError) as info:  # Throttled on HTTP 429
            await exporter.push(batch)
        assert info.value.retry_after == 2.0
    finally:
        await exporter.shutdown()
    [received] = sink.received
    assert received.request == batch.request and received.body == batch.serialized()
    assert received.transport == ("grpc" if protocol == "grpc" else "http")
    assert received.headers["x-team"] == "obs"


@pytest.mark.parametrize(
    ("settings", "endpoint"),
    [("    protocol: grpc", "jaeger:4317"), ("    protocol: http/protobuf", "http://jaeger:4318"),
     ("    endpoint: tracing:14317", "tracing:14317")],
)  # fmt: skip
def test_jaeger_friendly_defaults(settings: str, endpoint: str) -> None:
    config = parse_config(_config(settings))
    jaeger = config.exporters["jaeger"]
    assert isinstance(jaeger, JaegerExporterConfig)
    assert jaeger.endpoint == endpoint


def test_jaeger_in_a_logs_pipeline_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_config("    protocol: grpc", pipeline="logs/app"))
    assert "service.pipelines.logs/app.exporters[0]: exporter 'jaeger' takes only traces" in str(
        info.value
    )


def test_bad_jaeger_endpoint_reports_its_path() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_config("    protocol: http/protobuf\n    endpoint: jaeger:4318"))
    assert str(info.value).startswith("exporters.jaeger.endpoint: 'jaeger:4318' must be an http")
