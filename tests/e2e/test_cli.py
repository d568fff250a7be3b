"""The ``otelgate`` command as a user runs it: version, check-config, and the embedded default."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.support.gateway_process import otelgate_command
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def otelgate(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*otelgate_command(), *args], capture_output=True, text=True, timeout=60, **kwargs
    )


def test_version():
    result = otelgate("version")
    assert result.returncode == 0
    assert result.stdout.startswith("otelgate ")


def test_version_flag_matches_the_version_command():
    flag = otelgate("--version")
    assert flag.returncode == 0
    assert flag.stdout == otelgate("version").stdout


def test_run_help_lists_ports_data_dir_and_every_environment_variable():
    result = otelgate("run", "--help")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for expected in ("0.0.0.0:4317", "0.0.0.0:4318", "127.0.0.1:8888", "./otelgate-data"):
        assert expected in text, expected
    # Every OTELGATE_* variable the gateway itself reads (the demo's own are not run's).
    read = set()
    for package in ("gateway", "exporters"):
        for source in (ROOT / package).rglob("*.py"):
            if "demo" not in source.parts:
                read |= set(re.findall(r"OTELGATE_[A-Z_]+[A-Z]", source.read_text()))
    assert read, "no OTELGATE_ variable found: has the source moved?"
    missing = sorted(var for var in read if var not in text)
    assert not missing, f"otelgate run --help does not mention {missing}"


def test_an_unknown_event_loop_is_an_error_before_anything_starts(tmp_path):
    env = {**os.environ, "OTELGATE_EVENT_LOOP": "twisted"}
    result = otelgate("run", env=env, cwd=tmp_path)
    assert result.returncode != 0
    assert "OTELGATE_EVENT_LOOP must be uvloop or asyncio, not 'twisted'" in result.stderr


BAD_FILES = {
    "unknown nested key": (
        "exporters:\n  otlp/x: {endpoint: 'http://127.0.0.1:1', protocol: http/protobuf, "
        "sending_queue: {queue_sise: 10}}\n"
        "service: {pipelines: {traces: {receivers: [otlp], exporters: [otlp/x]}}}\n"
        "receivers: {otlp: {protocols: {grpc: {}}}}\n",
        ["exporters.otlp/x.sending_queue.queue_sise"],
    ),
    "undefined exporter and wrong type": (
        "receivers: {otlp: {protocols: {http: {endpoint: '127.0.0.1:4318'}}}}\n"
        "exporters: {file/a: {path: /tmp/a.jsonl, rotation: {max_backups: many}}}\n"
        "service: {pipelines: {logs: {receivers: [otlp], exporters: [file/a, otlp/missing]}}}\n",
        ["exporters.file/a.rotation.max_backups", "service.pipelines.logs.exporters[1]"],
    ),
    "bad endpoint": (
        "receivers: {otlp: {protocols: {grpc: {endpoint: 'localhost:99999'}}}}\n"
        "exporters: {file: {path: /tmp/x.jsonl}}\n"
        "service: {pipelines: {traces: {receivers: [otlp], exporters: [file]}}}\n",
        ["receivers.otlp.protocols.grpc.endpoint"],
    ),
    "yaml syntax": ("receivers: {otlp: [\n", ["line 2"]),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_check_config_names_the_bad_key(tmp_path, case):
    text, paths = BAD_FILES[case]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = otelgate("check-config", str(path))
    assert result.returncode == 1, result.stdout
    for expected in paths:
        assert expected in result.stderr, result.stderr


def test_check_config_accepts_the_minimal_example(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(
        """
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "0.0.0.0:4317"}
      http: {endpoint: "0.0.0.0:4318"}
admin: {endpoint: "127.0.0.1:8888"}
exporters:
  otlp/downstream: {endpoint: "http://127.0.0.1:14318", protocol: http/protobuf}
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [otlp/downstream]}
"""
    )
    result = otelgate("check-config", str(path))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_run_with_a_bad_config_exits_1_with_the_path(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("admin: {endpoint: nowhere}\n")
    result = otelgate("run", "--config", str(path))
    assert result.returncode == 1
    assert "admin.endpoint" in result.stderr


def test_busy_port_is_a_clear_error(tmp_path):
    admin = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", admin))
        holder.listen()
        env = {
            "OTELGATE_ADMIN_ENDPOINT": f"127.0.0.1:{admin}",
            "OTELGATE_GRPC_ENDPOINT": f"127.0.0.1:{free_port()}",
            "OTELGATE_HTTP_ENDPOINT": f"127.0.0.1:{free_port()}",
            "OTELGATE_DATA_DIR": str(tmp_path / "data"),
            "PATH": "/usr/bin:/bin",
        }
        result = otelgate("run", env=env)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{admin}" in result.stderr


def test_embedded_default_keeps_spans_in_the_data_dir(tmp_path):
    ports = {name: free_port() for name in ("grpc", "http", "admin")}
    env = {
        "OTELGATE_GRPC_ENDPOINT": f"127.0.0.1:{ports['grpc']}",
        "OTELGATE_HTTP_ENDPOINT": f"127.0.0.1:{ports['http']}",
        "OTELGATE_ADMIN_ENDPOINT": f"127.0.0.1:{ports['admin']}",
        "OTELGATE_DATA_DIR": str(tmp_path / "data"),
        "PATH": "/usr/bin:/bin",
    }
    proc = subprocess.Popen(
        [*otelgate_command(), "run"], env=env, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert time.monotonic() < deadline and proc.poll() is None, "gateway did not start"
            try:
                ready = httpx.get(f"http://127.0.0.1:{ports['admin']}/health/ready", timeout=1)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        provider = TracerProvider(resource=Resource.create({"service.name": "default-test"}))
        exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{ports['http']}/v1/traces")
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        with provider.get_tracer("t").start_as_current_span("stored") as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
        provider.shutdown()
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    lines = (tmp_path / "data" / "traces.jsonl").read_text().splitlines()
    stored = [
        span
        for line in lines
        for rs in json.loads(line)["resourceSpans"]
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
    ]
    assert [(s["name"], s["traceId"]) for s in stored] == [("stored", trace_id)]
