"""End to end: ``opentelemetry-instrument uvicorn examples.orders_app:app`` exporting over
OTLP/gRPC to the real gateway process, which forwards to a downstream OTLP sink; JSON logs on
the app's stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import forward_config
from tests.support.commands import script
from tests.support.gateway_process import GatewayProcess
from tests.support.otlp_sink import OtlpSink
from tests.support.ports import free_port
from tests.support.processes import pump_lines, stop_process

pytestmark = pytest.mark.e2e

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVER_KIND = 2  # SPAN_KIND_SERVER
SECRETS = (
    "hunter2-pw-e2e",
    "4111111111111111",
    "4111 1111 1111 1111",
    "alice@example.com",
    "e2e-bearer-token",
    "e2e-api-key-value",
)


@dataclass
class App:
    base_url: str
    sink: OtlpSink
    gateway: GatewayProcess
    process: subprocess.Popen[str]
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(self.stdout) if line.strip()]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    assert list(entry_points(group="opentelemetry_distro", name="otelgate")), (
        "otelgate's distro is not registered: install the package (pip install -e .)"
    )
    sink = OtlpSink().start()
    gateway = GatewayProcess(forward_config(sink, "grpc"), tmp_path_factory.mktemp("gateway"))
    try:
        gateway.start()
    except Exception:
        sink.stop()
        raise
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LOG_"))}
    env.pop("PYTHONPATH", None)
    env.update(
        OTEL_SERVICE_NAME="orders",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{gateway.grpc_endpoint}",
        OTEL_BSP_SCHEDULE_DELAY="200",
        OTEL_BLRP_SCHEDULE_DELAY="200",
        OTEL_METRIC_EXPORT_INTERVAL="1000",
        OTELGATE_LOG_BODIES="true",
        PYTHONUNBUFFERED="1",
    )
    cmd = [
        script("opentelemetry-instrument"),
        sys.executable,
        "-m",
        "uvicorn",
        "examples.orders_app:app",
    ]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    running = App(f"http://127.0.0.1:{port}", sink, gateway, process)
    for stream, lines in ((process.stdout, running.stdout), (process.stderr, running.stderr)):
        threading.Thread(target=pump_lines, args=(stream, lines), daemon=True).start()
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"app exited early: {''.join(running.stderr)[-3000:]}")
            try:
                if httpx.get(f"{running.base_url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"app not ready: {''.join(running.stderr)[-3000:]}")
            time.sleep(0.1)
        yield running
    finally:
        stop_process(process, 10)
        try:
            gateway.stop()
        finally:
            gateway.kill()
            sink.stop()


def _attrs(attributes: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in attributes:
        value = kv.value
        kind = value.WhichOneof("value")
        out[kv.key] = getattr(value, kind) if kind else None
    return out


def _server_span(sink: OtlpSink, request_id: str) -> Any:
    for span in sink.spans():
        if (
            span.kind == SERVER_KIND
            and _attrs(span.attributes).get("http.request.id") == request_id
        ):
            return span
    return None


def _logs_for(sink: OtlpSink, request_id: str) -> list[Any]:
    return [
        r for r in sink.log_records() if _attrs(r.attributes).get("correlation_id") == request_id
    ]


def _wait_request(app: App, request_id: str, min_logs: int) -> tuple[Any, list[Any]]:
    ok = app.sink.wait_for(
        lambda s: (
            _server_span(s, request_id) is not None and len(_logs_for(s, request_id)) >= min_logs
        ),
        timeout=15,
    )
    assert ok, f"nothing at the sink for {request_id}: {''.join(app.stderr)[-2000:]}"
    return _server_span(app.sink, request_id), _logs_for(app.sink, request_id)


def test_spans_metrics_and_correlated_logs(app: App) -> None:
    response = httpx.get(f"{app.base_url}/orders/1", headers={"X-Request-ID": "e2e-get-1"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "e2e-get-1"
    span, logs = _wait_request(app, "e2e-get-1", min_logs=2)
    assert span.name == "GET /orders/{order_id}"
    assert {r.body.string_value for r in logs} >= {"order looked up"}
    for record in logs:  # every log record emitted inside the request carries its trace id
        assert record.trace_id == span.trace_id, record
        assert record.span_id == span.span_id
    access = [r for r in logs if "duration_ms" in _attrs(r.attributes)]
    assert len(access) == 1
    assert _attrs(access[0].attributes)["route"] == "/orders/{order_id}"
    assert _attrs(access[0].attributes)["status"] == 200
    assert app.sink.wait_for(lambda s: s.data_points_count() > 0, timeout=10)
    metric_names = {
        m.name
        for r in app.sink.received
        if r.signal.value == "metrics"
        for rm in r.request.resource_metrics  # type: ignore[union-attr]
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert any(name.startswith("http.server") for name in metric_names), metric_names
    resources = [
        _attrs(rs.resource.attributes)
        for r in app.sink.received
        if r.signal.value == "traces"
        for rs in r.request.resource_spans  # type: ignore[union-attr]
    ]
    assert resources and all(res["service.name"] == "orders" for res in resources)


def test_stdout_is_json_with_the_same_trace_ids(app: App) -> None:
    httpx.get(f"{app.base_url}/orders/2", headers={"X-Request-ID": "e2e-stdout-2"})
    span, _ = _wait_request(app, "e2e-stdout-2", min_logs=2)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        mine = [x for x in app.json_lines() if x.get("correlation_id") == "e2e-stdout-2"]
        if len(mine) >= 2:
            break
        time.sleep(0.05)
    lines = app.json_lines()  # raises if any stdout line is not JSON
    assert all(x["service"] == "orders" for x in lines)
    mine = [x for x in lines if x.get("correlation_id") == "e2e-stdout-2"]
    assert {x["message"] for x in mine} >= {"order looked up"}
    assert len(mine) >= 2
    for line in mine:
        assert line["trace_id"] == span.trace_id.hex()
        assert line["span_id"] == span.span_id.hex()
        assert line["timestamp"].endswith("Z")


def test_masked_values_never_exported(app: App) -> None:
    body = {
        "item": "lamp",
        "password": "hunter2-pw-e2e",
        "card_number": "4111 1111 1111 1111",
        "email": "alice@example.com",
    }
    headers = {
        "X-Request-ID": "e2e-post-1",
        "Authorization": "Bearer e2e-bearer-token",
        "X-API-Key": "e2e-api-key-value",
    }
    response = httpx.post(f"{app.base_url}/orders", json=body, headers=headers)
    assert response.status_code == 201
    span, logs = _wait_request(app, "e2e-post-1", min_logs=2)
    access = next(r for r in logs if "duration_ms" in _attrs(r.attributes))
    assert "***" in str(access.attributes)  # bodies and headers were logged, masked
    exported = "\n".join(str(r) for r in app.sink.log_records())
    exported += "\n".join(str(s.attributes) + str(s.events) for s in app.sink.spans())
    stdout = "".join(app.stdout)
    for secret in SECRETS:
        assert secret not in exported, secret
        assert secret not in stdout, secret
    assert span.trace_id == access.trace_id


def test_unhandled_exception(app: App) -> None:
    response = httpx.get(f"{app.base_url}/boom", headers={"X-Request-ID": "e2e-boom-1"})
    assert response.status_code == 500
    span, logs = _wait_request(app, "e2e-boom-1", min_logs=2)
    assert span.status.code == 2  # STATUS_CODE_ERROR
    events = [e for e in span.events if e.name == "exception"]
    assert len(events) == 1
    attributes = _attrs(events[0].attributes)
    assert attributes["exception.type"] == "RuntimeError"
    assert "Traceback" in attributes["exception.stacktrace"]
    assert "raise RuntimeError" in attributes["exception.stacktrace"]
    errors = [r for r in logs if r.severity_text == "ERROR"]
    assert len(errors) == 1
    assert errors[0].trace_id == span.trace_id
    assert "Traceback" in _attrs(errors[0].attributes)["exception.stacktrace"]
    for record in logs:
        assert record.trace_id == span.trace_id
