"""Error groups drive alerts on the real gateway: a new exception notifies through a webhook
with the group's labels; resolving it and raising it again from a newer ``service.version``
notifies a regression. Exceptions come from the OpenTelemetry SDK (``record_exception`` on a
real raised exception, shipped over OTLP/HTTP)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from tests.support.alerting import payloads, wait_for
from tests.support.gateway_process import GatewayProcess
from tests.support.recorder import Recorder, recording_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@pytest.fixture
def webhook() -> Iterator[Recorder]:
    with recording_server() as recorder:
        yield recorder


def charge(amount: int) -> None:
    raise ValueError(f"amount {amount} exceeds the card limit")


def send_exception(endpoint: str, version: str, amount: int) -> None:
    """One SERVER span of service ``pay`` at ``version`` that recorded a raised exception."""
    resource = Resource.create({"service.name": "pay", "service.version": version})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(f"{endpoint}/v1/traces")))
    tracer = provider.get_tracer("e2e.errors")
    with tracer.start_as_current_span("POST /charge", kind=SpanKind.SERVER) as span:
        span.set_attribute("http.route", "/charge")
        try:
            charge(amount)
        except ValueError as exc:
            span.record_exception(exc)
    provider.shutdown()


def config(webhook: str) -> dict[str, Any]:
    rule = {"severity": "warning", "keep_firing_for": "0s"}
    return {
        "exporters": {"store": None},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["store"]}}},
        "alerting": {
            "evaluation_interval": "250ms",
            "default_rules": {"enabled": False},
            "rules": [
                {"name": "NewErrorGroup", "condition": {"error_group": "new"}, **rule},
                {"name": "ErrorRegression", "condition": {"error_group": "regression"}, **rule},
            ],
            "receivers": {"ops": {"webhook": {"url": f"{webhook}/ops"}}},
            "route": {
                "receiver": "ops",
                "group_by": ["alertname", "group"],
                "group_wait": "200ms",
                "group_interval": "1s",
            },
        },
    }


def firing(webhook: Recorder, rule: str) -> list[dict[str, Any]]:
    return [
        alert
        for _, body in payloads(webhook, "/ops")
        for alert in body["alerts"]
        if alert["labels"]["alertname"] == rule and alert["status"] == "firing"
    ]


def test_new_groups_and_regressions_notify(
    start_gateway: Callable[..., GatewayProcess], webhook: Recorder
) -> None:
    gateway = start_gateway(config(webhook.url))
    send_exception(gateway.http_endpoint, "1.0.0", 120)
    [alert] = wait_for(lambda: firing(webhook, "NewErrorGroup"), timeout=20)
    labels = alert["labels"]
    assert labels["service"] == "pay" and labels["exception_type"] == "ValueError"
    assert labels["culprit"].endswith("in charge"), labels
    group = httpx.get(f"{gateway.admin_url}/errors/{labels['group']}", timeout=5).json()
    assert group["count"] == 1 and group["service_versions"] == ["1.0.0"]

    resolved = httpx.post(f"{gateway.admin_url}/errors/{labels['group']}/resolve",
                          json={"by": "erin"}, timeout=5)  # fmt: skip
    assert resolved.json()["status"] == "resolved"
    send_exception(gateway.http_endpoint, "1.0.0", 130)  # old code still running: no alert
    time.sleep(1.5)
    assert firing(webhook, "ErrorRegression") == []
    assert len(firing(webhook, "NewErrorGroup")) == 1  # the same bug is not new again

    send_exception(gateway.http_endpoint, "1.1.0", 140)
    [again] = wait_for(lambda: firing(webhook, "ErrorRegression"), timeout=20)
    assert again["labels"]["group"] == labels["group"]
    group = httpx.get(f"{gateway.admin_url}/errors/{labels['group']}", timeout=5).json()
    assert group["status"] == "unresolved" and group["regression"] is True
    assert group["count"] == 3 and group["regressions"] == 1
