"""The cloudwatch exporter in the real gateway process, the OpenTelemetry SDK as the client
and moto's server mode (a real AWS API emulator) as CloudWatch Logs: the logs the SDK sent are
events of their service's stream, the metrics are EMF records CloudWatch would extract.

Counts are printed (run pytest with -s to see them)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from tests.support import emf
from tests.support.moto_server import FAKE_CREDENTIALS, MotoServer

SERVICE = "orders"


@pytest.fixture
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


def send_with_sdk(grpc_endpoint: str, n: int) -> list[str]:
    """An app with the OTel SDK: ``n`` log lines and a counter of 7 orders, over OTLP/gRPC."""
    resource = Resource.create({"service.name": SERVICE})
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=grpc_endpoint, insecure=True))
    )
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=grpc_endpoint, insecure=True), export_interval_millis=3_600_000
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    logger = logging.getLogger(f"e2e.cloudwatch.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(logger_provider=logger_provider)
    logger.addHandler(handler)
    lines = [f"order {i} paid {uuid.uuid4().hex[:8]}" for i in range(n)]
    try:
        for line in lines:
            logger.warning(line)
        meter_provider.get_meter("e2e").create_counter("orders.paid", unit="{order}").add(
            7, {"region": "eu"}
        )
        assert logger_provider.force_flush(10_000)
        assert reader.force_flush(10_000)
    finally:
        logger.removeHandler(handler)
        logger_provider.shutdown()
        meter_provider.shutdown()
    return lines


def wait_for_events(moto: MotoServer, group: str, stream: str, n: int, gateway: Any) -> list:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if group in moto.groups() and stream in moto.streams(group):
            events = moto.events(group, stream)
            if len(events) >= n:
                return events
        time.sleep(0.2)
    raise AssertionError(f"fewer than {n} events in {group}/{stream}:\n{gateway.logs()}")


def test_sdk_logs_and_metrics_reach_cloudwatch(moto: MotoServer, start_gateway, tmp_path: Path):
    env = {**FAKE_CREDENTIALS, "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}  # fmt: skip
    settings = {"region": "us-east-1", "endpoint": moto.url, "log_retention": 3,
                "retry_on_failure": {"initial_interval": "200ms", "max_interval": "1s"},
                "metrics": {"namespace": "Shop"}}  # fmt: skip
    gateway = start_gateway(
        {
            "exporters": {"cloudwatch": settings},
            "service": {
                "pipelines": {
                    "logs": {"receivers": ["otlp"], "exporters": ["cloudwatch"]},
                    "metrics": {"receivers": ["otlp"], "exporters": ["cloudwatch"]},
                },
                "shutdown_timeout": "5s",
            },
        },
        env=env,
    )
    lines = send_with_sdk(gateway.grpc_endpoint, 40)
    wait_for_events(moto, "/otelgate/logs", SERVICE, len(lines), gateway)
    wait_for_events(moto, "/otelgate/metrics", SERVICE, 1, gateway)
    time.sleep(0.5)  # anything extra would show up now
    events = moto.events("/otelgate/logs", SERVICE)
    print(f"\n[cloudwatch] log lines sent={len(lines)} events={len(events)} "
          f"emf records={len(moto.events('/otelgate/metrics', SERVICE))}")  # fmt: skip

    assert {g: v.get("retentionInDays") for g, v in moto.groups().items()} == {
        "/otelgate/logs": 3, "/otelgate/metrics": 3}  # fmt: skip
    messages = [json.loads(e["message"]) for e in events]
    assert sorted(m["body"] for m in messages) == sorted(lines)  # each line exactly once
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps)
    first = messages[0]
    assert first["severity_text"] == "WARN" and first["severity_number"] == 13
    assert first["resource"]["service.name"] == SERVICE
    assert first["resource"]["telemetry.sdk.language"] == "python"

    docs = [json.loads(r["message"]) for r in moto.events("/otelgate/metrics", SERVICE)]
    assert [emf.problems(d) for d in docs] == [[]] * len(docs)
    paid = [(dims, value) for d in docs for ns, name, dims, value in emf.metrics(d)
            if (ns, name) == ("Shop", "orders.paid")]  # fmt: skip
    assert paid and paid[0] == ({"service.name": SERVICE, "region": "eu"}, 7)
    assert sum(value for _, value in paid) == 7  # later points of the counter add nothing
    assert gateway.metric("otelgate_exporter_failed_items_total", exporter="cloudwatch",
                          signal="logs") == 0  # fmt: skip
