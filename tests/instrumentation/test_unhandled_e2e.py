"""End to end: unhandled exceptions of an app run by ``opentelemetry-instrument`` reach the
real gateway (and the OTLP sink behind it) as log records carrying the trace id of the span
they escaped from; uvicorn's own lines are JSON on stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
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

SERVER_KIND = 2  # SPAN_KIND_SERVER
SEVERITY_FATAL = 21  # SEVERITY_NUMBER_FATAL, what the SDK maps logging.CRITICAL to

WEB_APP = textwrap.dedent(
    """
    from fastapi import FastAPI

    app = FastAPI()  # no otelgate middleware, no logging setup: the wrapper does it all


    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}


    @app.get("/fail")
    async def fail() -> None:
        raise RuntimeError("e2e route exploded")
    """
)

JOB = textwrap.dedent(
    """
    from opentelemetry import trace

    tracer = trace.get_tracer("e2e.job")
    with tracer.start_as_current_span("job"):
        raise ValueError("e2e job failed")
    """
)


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OtlpSink, GatewayProcess]]:
    """A sink behind a real gateway process accepting OTLP/gRPC."""
    out = OtlpSink().start()
    gateway = GatewayProcess(forward_config(out, "grpc"), tmp_path_factory.mktemp("gateway"))
    try:
        gateway.start()
        yield out, gateway
    finally:
        try:
            gateway.stop()
        finally:
            gateway.kill()
            out.stop()


def _env(gateway: GatewayProcess, service: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LOG_", "OTELGATE_"))}
    env.pop("PYTHONPATH", None)
    env.update(
        OTEL_SERVICE_NAME=service,
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{gateway.grpc_endpoint}",
        OTEL_BSP_SCHEDULE_DELAY="200",
        OTEL_BLRP_SCHEDULE_DELAY="200",
        OTEL_METRICS_EXPORTER="none",
        PYTHONUNBUFFERED="1",
    )
    return env


def _attrs(attributes: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in attributes:
        kind = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, kind) if kind else None
    return out


def _span(sink: OtlpSink, service_check: Any) -> Any:
    return next((s for s in sink.spans() if service_check(s)), None)


def _exception_logs(sink: OtlpSink, exc_type: str) -> list[Any]:
    return [r for r in sink.log_records() if _attrs(r.attributes).get("exception.type") == exc_type]


def _is_fail_server_span(span: Any) -> bool:
    return span.kind == SERVER_KIND and _attrs(span.attributes).get("http.route") == "/fail"


def test_uvicorn_app_exception_exported_with_trace_id(
    sink: tuple[OtlpSink, GatewayProcess], tmp_path: Path
) -> None:
    otlp, gateway = sink
    (tmp_path / "e2e_web_app.py").write_text(WEB_APP)
    port = free_port()
    cmd = [script("opentelemetry-instrument"), sys.executable, "-m", "uvicorn", "e2e_web_app:app"]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        env=_env(gateway, "e2e-web"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout: list[str] = []
    stderr: list[str] = []
    for stream, kept in ((process.stdout, stdout), (process.stderr, stderr)):
        threading.Thread(target=pump_lines, args=(stream, kept), daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"app exited early: {''.join(stderr)[-3000:]}"
            try:
                if httpx.get(f"{base}/ok", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"app not ready: {''.join(stderr)[-3000:]}"
            time.sleep(0.1)
        assert httpx.get(f"{base}/fail", timeout=10).status_code == 500

        def arrived(s: OtlpSink) -> bool:
            return _span(s, _is_fail_server_span) is not None and bool(
                _exception_logs(s, "RuntimeError")
            )

        assert otlp.wait_for(arrived, timeout=20), "".join(stderr)[-3000:]
        span = _span(otlp, _is_fail_server_span)
        time.sleep(0.5)  # a duplicate would arrive in the same or the next export
        [record] = _exception_logs(otlp, "RuntimeError")  # exported exactly once
        assert record.trace_id == span.trace_id
        assert record.span_id  # the span that recorded the exception (same trace)
        attributes = _attrs(record.attributes)
        assert "e2e route exploded" in attributes["exception.stacktrace"]
        assert "Traceback" in attributes["exception.stacktrace"]
        assert "Exception in ASGI application" in record.body.string_value

        deadline = time.monotonic() + 10
        lines: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            lines = [json.loads(x) for x in list(stdout) if x.strip()]  # every line is JSON
            if any(x["logger"] == "uvicorn.access" for x in lines) and any(
                "exception" in x for x in lines
            ):
                break
            time.sleep(0.05)
        access = [x for x in lines if x["logger"] == "uvicorn.access"]
        assert any("GET /fail" in x["message"] and "500" in x["message"] for x in access)
        assert any("GET /ok" in x["message"] for x in access)
        [error] = [x for x in lines if x["logger"] == "uvicorn.error" and "exception" in x]
        assert error["level"] == "ERROR"
        assert error["exception"]["type"] == "RuntimeError"
        assert error["trace_id"] == span.trace_id.hex()
        assert any(x["message"] == "Application startup complete." for x in lines)
        assert all(x["service"] == "e2e-web" for x in lines)
        assert "Exception in ASGI application" not in "".join(stderr)
    finally:
        stop_process(process, 10)


def test_script_exception_exported_before_exit(
    sink: tuple[OtlpSink, GatewayProcess], tmp_path: Path
) -> None:
    otlp, gateway = sink
    (tmp_path / "e2e_job.py").write_text(JOB)
    result = subprocess.run(
        [script("opentelemetry-instrument"), sys.executable, "e2e_job.py"],
        cwd=tmp_path,
        env=_env(gateway, "e2e-job"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback (most recent call last)" in result.stderr  # Python's own report stays
    assert "ValueError: e2e job failed" in result.stderr

    def is_job(span: Any) -> bool:
        return bool(span.name == "job")

    def arrived(s: OtlpSink) -> bool:
        return _span(s, is_job) is not None and bool(_exception_logs(s, "ValueError"))

    assert otlp.wait_for(arrived, timeout=20), result.stderr[-3000:]
    span = _span(otlp, is_job)
    [record] = _exception_logs(otlp, "ValueError")
    assert record.severity_number == SEVERITY_FATAL
    assert record.body.string_value == "unhandled exception"
    assert record.trace_id == span.trace_id
    assert record.span_id == span.span_id
    assert "e2e job failed" in _attrs(record.attributes)["exception.stacktrace"]
    [line] = [json.loads(x) for x in result.stdout.splitlines() if "unhandled exception" in x]
    assert line["level"] == "CRITICAL" and line["trace_id"] == span.trace_id.hex()
