"""Hostile input against the real gateway (issue 9): no request freezes the listeners, what is
accepted is delivered, what cannot be re-read is refused, memory stays bounded."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.otlp.batch import Signal
from gateway.otlp.json_codec import decode_json
from tests.e2e.conftest import forward_config
from tests.support.gateway_process import GatewayProcess
from tests.support.hostile import (
    MAX_SPAN_ATTRIBUTE_NESTING,
    deep_traces_json,
    deep_traces_protobuf,
    empty_groups,
    gzip_members,
    tiny_spans,
)
from tests.support.otlp_sink import OtlpSink
from tests.support.ports import free_port
from tests.support.probes import Probes, fresh_spans, span_ids

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


def rss_mib(gateway: GatewayProcess) -> float:
    assert gateway.proc is not None
    return float(psutil.Process(gateway.proc.pid).memory_info().rss) / 2**20


def test_every_listener_answers_within_a_second_while_the_worst_requests_are_handled(
    sink: OtlpSink, start_gateway: Callable[..., GatewayProcess]
) -> None:
    """Findings 1 and "huge counts of tiny items": an invalid value 45 levels deep (13 s at 18
    levels before, doubling per level), a million and one empty groups, 500,000 empty groups
    with 3 spans, and 60,000 tiny spans are sent while the probes run."""
    gateway = start_gateway(forward_config(sink))
    url = f"{gateway.http_endpoint}/v1/traces"
    hostile: list[tuple[str, bytes, dict[str, str], int]] = [
        ("deep invalid JSON", orjson.dumps(deep_traces_json(45, "array", True)), JSON, 400),
        ("1,000,001 empty groups", empty_groups(1_000_001), PROTOBUF, 413),
        ("500,000 empty groups + 3 spans", empty_groups(500_000) + tiny_spans(3), PROTOBUF, 200),
        ("60,000 tiny spans", tiny_spans(60_000), PROTOBUF, 200),
    ]
    answers: dict[str, int] = {}

    def send(name: str, body: bytes, headers: dict[str, str]) -> None:
        answers[name] = httpx.post(url, content=body, headers=headers, timeout=60).status_code

    with Probes(gateway) as probes:
        time.sleep(0.3)
        senders = [
            threading.Thread(target=send, args=(name, body, headers))
            for name, body, headers, _ in hostile
        ]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(90)
        time.sleep(0.3)
    assert answers == {name: status for name, _, _, status in hostile}
    assert not probes.errors
    assert max(probes.slowest.values()) < 1.0, probes.slowest
    assert sink.wait_for(lambda s: s.item_count(Signal.TRACES) >= 60_003 + len(probes.sent), 30)
    assert probes.sent <= {span.span_id for span in sink.spans()}


def test_the_deepest_accepted_request_is_delivered_by_every_exporter(
    sink: OtlpSink, start_gateway: Callable[..., GatewayProcess], tmp_path: Path
) -> None:
    """Finding 2: what the gateway accepts it can re-read (disk spool), re-encode (file
    exporter's JSON) and deliver (OTLP); one level deeper is refused (400) in JSON as in
    protobuf, and the requests after it are not harmed."""
    path = tmp_path / "traces.jsonl"
    config = forward_config(sink, sending_queue={"storage": "disk"})
    config["exporters"]["file"] = {"path": str(path)}
    config["service"]["pipelines"]["traces"]["exporters"].append("file")
    gateway = start_gateway(config)
    url = f"{gateway.http_endpoint}/v1/traces"
    for kind, deepest in MAX_SPAN_ATTRIBUTE_NESTING.items():
        too_deep = orjson.dumps(deep_traces_json(deepest + 1, kind))
        refused = httpx.post(url, content=too_deep, headers=JSON, timeout=10)
        assert refused.status_code == 400
        assert "nested deeper than 100 levels" in refused.json()["message"]
        doc = deep_traces_json(deepest, kind)
        assert httpx.post(url, content=orjson.dumps(doc), headers=JSON, timeout=10).is_success
    after = fresh_spans(50)
    body = after.SerializeToString()
    assert httpx.post(url, content=body, headers=PROTOBUF, timeout=10).is_success
    assert sink.wait_for(lambda s: s.item_count(Signal.TRACES) == 52, 15)
    deep = [s for s in sink.spans() if s.name == "deep"]
    assert len(deep) == 2
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(_names_in_file(path)) < 52:
        time.sleep(0.1)
    assert _names_in_file(path).count("deep") == 2
    assert gateway.metric("otelgate_exporter_failed_items_total") == 0


def _names_in_file(path: Path) -> list[str]:
    """Names of the spans the file exporter wrote (OTLP/JSON lines), re-read by our decoder."""
    lines = path.read_bytes().splitlines() if path.exists() else []
    names = []
    for line in lines:
        request = decode_json(Signal.TRACES, line)
        assert isinstance(request, ExportTraceServiceRequest)
        names += [
            s.name for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans
        ]
    return names


def test_every_gzip_member_is_delivered(
    sink: OtlpSink, start_gateway: Callable[..., GatewayProcess]
) -> None:
    """Finding 6: two gzip members (3 + 4 spans) were answered 200 and only 3 delivered."""
    gateway = start_gateway(forward_config(sink))
    first, second = fresh_spans(3), fresh_spans(4)
    body = gzip_members(first.SerializeToString(), second.SerializeToString())
    headers = {**PROTOBUF, "Content-Encoding": "gzip"}
    response = httpx.post(f"{gateway.http_endpoint}/v1/traces", content=body, headers=headers)
    assert response.status_code == 200
    expected = span_ids(first) | span_ids(second)
    assert sink.wait_for(lambda s: expected <= {span.span_id for span in s.spans()}, 10)
    assert sink.item_count(Signal.TRACES) == 7


class StalledBackend:
    """A TCP listener that accepts connections and never answers: a hung backend."""

    def __init__(self) -> None:
        self.port = free_port()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self._conns.append(conn)

    def close(self) -> None:
        self._server.close()
        for conn in self._conns:
            conn.close()


def test_large_requests_to_a_hung_backend_hit_the_byte_limit_not_the_memory_ceiling(
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    """Finding 4: 400 one-span requests of 4 MiB grew RSS from 85 MB to 1.77 GB, all
    answered 200, with the backend hung. The queue is bounded in bytes now: once 32 MiB wait,
    the client gets 429 + Retry-After and RSS stays flat."""
    backend = StalledBackend()
    try:
        gateway = start_gateway(_hung_config(backend.port))
        baseline = rss_mib(gateway)
        statuses: list[int] = []
        retry_after: set[str] = set()
        peak = baseline
        with httpx.Client(timeout=30) as client:
            for _ in range(60):
                request = fresh_spans(1)
                span = request.resource_spans[0].scope_spans[0].spans[0]
                span.attributes.add(key="blob").value.string_value = "x" * (4 * 2**20)
                response = client.post(
                    f"{gateway.http_endpoint}/v1/traces",
                    content=request.SerializeToString(),
                    headers=PROTOBUF,
                )
                statuses.append(response.status_code)
                if response.status_code == 429:
                    retry_after.add(response.headers.get("retry-after", ""))
                peak = max(peak, rss_mib(gateway))
        accepted = statuses.count(200)
        assert 6 <= accepted <= 9, statuses  # 32 MiB of 4 MiB requests (+ one in flight)
        assert statuses.count(429) == 60 - accepted and retry_after == {"1"}
        assert peak - baseline < 250, (baseline, peak)  # was +1,700 MB for 400 requests
        assert gateway.metric("otelgate_exporter_queue_bytes") <= 36 * 2**20
    finally:
        backend.close()


def _hung_config(port: int) -> dict[str, Any]:
    return {
        "exporters": {
            "otlp/hung": {
                "endpoint": f"http://127.0.0.1:{port}",
                "protocol": "http/protobuf",
                "timeout": "60s",
                "sending_queue": {"max_bytes": 32 * 2**20, "num_consumers": 1},
            }
        },
        "service": {
            "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["otlp/hung"]}},
            "shutdown_timeout": "1s",
        },
    }


def test_stalled_uploads_hold_the_in_flight_budget_and_others_get_503(
    sink: OtlpSink, start_gateway: Callable[..., GatewayProcess]
) -> None:
    """Finding 4: 20 stalled uploads pinned 1.13 GB. Each upload holds its declared length
    against max_inflight_bytes; past it the gateway answers 503 + Retry-After at once."""
    config = forward_config(sink)
    config["service"]["admission"] = {"max_inflight_bytes": 48 * 2**20}
    gateway = start_gateway(config)
    baseline = rss_mib(gateway)
    stalled: list[socket.socket] = []
    try:
        for _ in range(2):  # 2 x 20 MiB declared, 1 MiB sent, then silence
            sock = socket.create_connection(("127.0.0.1", gateway.http_port))
            sock.sendall(
                b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                + f"Content-Length: {20 * 2**20}\r\n\r\n".encode()
                + b"\0" * 2**20
            )
            stalled.append(sock)
        time.sleep(0.5)
        assert gateway.metric("otelgate_receiver_inflight_bytes") == 40 * 2**20
        url = f"{gateway.http_endpoint}/v1/traces"
        refused = httpx.post(url, content=b"\0" * (9 * 2**20), headers=PROTOBUF, timeout=10)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        small = fresh_spans(2).SerializeToString()
        assert httpx.post(url, content=small, headers=PROTOBUF, timeout=10).status_code == 200
        labels = {"signal": "traces", "transport": "http", "reason": "memory_limit"}
        assert gateway.metric("otelgate_receiver_refused_requests_total", **labels) == 1
        assert rss_mib(gateway) - baseline < 120
    finally:
        for sock in stalled:
            sock.close()
    deadline = time.monotonic() + 10
    while gateway.metric("otelgate_receiver_inflight_bytes") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gateway.metric("otelgate_receiver_inflight_bytes") == 0


@pytest.mark.parametrize("depth", [31, 40])
def test_deep_protobuf_is_refused_only_past_what_protobuf_reads(
    sink: OtlpSink, start_gateway: Callable[..., GatewayProcess], depth: int
) -> None:

    gateway = start_gateway(forward_config(sink))
    body = deep_traces_protobuf(depth, "kvlist")
    response = httpx.post(f"{gateway.http_endpoint}/v1/traces", content=body, headers=PROTOBUF)
    assert response.status_code == (200 if depth <= 31 else 400)
