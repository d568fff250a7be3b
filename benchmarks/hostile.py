"""Issue 9's attacks, replayed against a real gateway, with the figures that decide them.

``python -m benchmarks.hostile [--source DIR]`` starts otelgate (this tree, or the packages in
``DIR`` to measure an older commit: ``git worktree add /tmp/base <commit>``) once per attack
and prints one line each: what the attacker saw and what it cost the gateway. It takes about
two minutes. Not a test: the tests (tests/e2e/test_hostile.py, test_overload.py) assert the
fixed behaviour; this prints the numbers before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil

from gateway.otlp.batch import Signal
from tests.e2e.conftest import forward_config
from tests.support.gateway_process import GatewayProcess
from tests.support.hostile import deep_traces_json, gzip_members
from tests.support.otlp_samples import sample_request
from tests.support.otlp_sink import OtlpSink
from tests.support.ports import free_port
from tests.support.probes import Probes, fresh_spans

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}
Attack = Callable[[Callable[[dict[str, Any]], GatewayProcess], OtlpSink], str]


def rss(gateway: GatewayProcess) -> float:
    assert gateway.proc is not None
    return float(psutil.Process(gateway.proc.pid).memory_info().rss) / 2**20


def deep_json_error(start: Callable[[dict[str, Any]], GatewayProcess], sink: OtlpSink) -> str:
    """Finding 1: an invalid leaf 18 levels deep in arrayValue (about 700 bytes)."""
    gateway = start(forward_config(sink))
    body = orjson.dumps(deep_traces_json(18, "array", invalid_leaf=True))
    with Probes(gateway) as probes:
        time.sleep(0.3)
        started = time.monotonic()
        status = httpx.post(
            f"{gateway.http_endpoint}/v1/traces", content=body, headers=JSON, timeout=120
        ).status_code
        took = time.monotonic() - started
    slowest = max(probes.slowest.values())
    return f"{len(body)} B request: {status} after {took:.2f}s; slowest probe {slowest:.2f}s"


def deep_nesting_spool(start: Callable[[dict[str, Any]], GatewayProcess], sink: OtlpSink) -> str:
    """Finding 2: while the backend refuses, one span, a kvlist 32 levels deep, then 2,000
    spans, through a disk spool with one worker (so the poison is read after the others are
    written behind it)."""
    gateway = start(forward_config(sink, sending_queue={"storage": "disk", "num_consumers": 1}))
    url = f"{gateway.http_endpoint}/v1/traces"
    sink.fail_next(4)
    first = fresh_spans(1).SerializeToString()
    httpx.post(url, content=first, headers=PROTOBUF, timeout=10).raise_for_status()
    poison = httpx.post(url, content=orjson.dumps(deep_traces_json(32, "kvlist")), headers=JSON)
    for _ in range(20):
        body = fresh_spans(100).SerializeToString()
        httpx.post(url, content=body, headers=PROTOBUF, timeout=10).raise_for_status()
    sink.wait_for(lambda s: s.item_count(Signal.TRACES) >= 2001, 15)
    return (
        f"32-level kvlist answered {poison.status_code}; of 2,001 other spans "
        f"{sink.item_count(Signal.TRACES)} delivered"
    )


class _Hung:
    """A backend that accepts connections and never answers."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server = socket.create_server(("127.0.0.1", self.port))
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.conns.append(self.server.accept()[0])
            except OSError:
                return


def big_requests(start: Callable[[dict[str, Any]], GatewayProcess], sink: OtlpSink) -> str:
    """Finding 4: 150 one-span requests of 4 MiB to a gateway whose backend hangs."""
    hung = _Hung()
    exporter = {"endpoint": f"http://127.0.0.1:{hung.port}", "protocol": "http/protobuf",
                "timeout": "120s", "sending_queue": {"num_consumers": 1}}  # fmt: skip
    gateway = start({
        "exporters": {"otlp/hung": exporter},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["otlp/hung"]}},
                    "shutdown_timeout": "1s"},
    })  # fmt: skip
    before, peak, statuses = rss(gateway), 0.0, {}
    with httpx.Client(timeout=60) as client:
        for _ in range(150):
            request = fresh_spans(1)
            span = request.resource_spans[0].scope_spans[0].spans[0]
            span.attributes.add(key="blob").value.string_value = "x" * (4 * 2**20)
            body = request.SerializeToString()
            url = f"{gateway.http_endpoint}/v1/traces"
            status = client.post(url, content=body, headers=PROTOBUF).status_code
            statuses[status] = statuses.get(status, 0) + 1
            peak = max(peak, rss(gateway))
    hung.server.close()
    return f"answers {statuses}; RSS {before:.0f} -> peak {peak:.0f} MiB"


def stalled_uploads(start: Callable[[dict[str, Any]], GatewayProcess], sink: OtlpSink) -> str:
    """Finding 4: 20 uploads declaring 64 MiB, sending 56 MiB, then stalling."""
    gateway = start(forward_config(sink))
    before = rss(gateway)
    socks = []
    for _ in range(20):
        sock = socket.create_connection(("127.0.0.1", gateway.http_port))
        head = (b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                + f"Content-Length: {64 * 2**20}\r\n\r\n".encode())  # fmt: skip
        sock.settimeout(5)
        with contextlib.suppress(OSError):  # refused early: the gateway stopped reading
            sock.sendall(head + b"\0" * (56 * 2**20))
        socks.append(sock)
    time.sleep(2)
    during = rss(gateway)
    probe = httpx.post(f"{gateway.http_endpoint}/v1/traces", content=b"\0" * 1000,
                       headers=PROTOBUF, timeout=10).status_code  # fmt: skip
    for sock in socks:
        sock.close()
    return f"RSS {before:.0f} -> {during:.0f} MiB with 20 stalled; a new 1 KB request got {probe}"


def gzip_two_members(start: Callable[[dict[str, Any]], GatewayProcess], sink: OtlpSink) -> str:
    """Finding 6: two gzip members, 3 + 4 spans."""
    gateway = start(forward_config(sink))
    body = gzip_members(fresh_spans(3).SerializeToString(), fresh_spans(4).SerializeToString())
    status = httpx.post(f"{gateway.http_endpoint}/v1/traces", content=body,
                        headers={**PROTOBUF, "Content-Encoding": "gzip"}).status_code  # fmt: skip
    sink.wait_for(lambda s: s.item_count(Signal.TRACES) >= 7, 5)
    return f"answered {status}; {sink.item_count(Signal.TRACES)} of 7 spans delivered"


def overload(start: Callable[[dict[str, Any]], GatewayProcess], sink: OtlpSink) -> str:
    """Finding 7: 96 clients in a closed loop, 500 spans a request, for 10 s."""
    gateway = start(forward_config(sink))
    body = sample_request(Signal.TRACES, 500).SerializeToString()
    deadline = time.monotonic() + 10
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    before, peak = rss(gateway), 0.0

    def client() -> None:
        with httpx.Client(timeout=60) as http:
            while time.monotonic() < deadline:
                started = time.monotonic()
                code = http.post(f"{gateway.http_endpoint}/v1/traces", content=body,
                                 headers=PROTOBUF).status_code  # fmt: skip
                with lock:
                    latencies.append(time.monotonic() - started)
                    statuses[code] = statuses.get(code, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(96)]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        peak = max(peak, rss(gateway))
        time.sleep(0.1)
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    return (
        f"answers {statuses}; p50 {latencies[len(latencies) // 2]:.2f}s p99 {p99:.2f}s; "
        f"RSS {before:.0f} -> peak {peak:.0f} MiB"
    )


ATTACKS: dict[str, Attack] = {
    "1 deep JSON error": deep_json_error,
    "2 deep nesting + spool": deep_nesting_spool,
    "4 big requests, hung backend": big_requests,
    "4 stalled uploads": stalled_uploads,
    "6 multi-member gzip": gzip_two_members,
    "7 overload": overload,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, help="otelgate's packages from this directory")
    parser.add_argument("--only", help="comma-separated finding numbers")
    args = parser.parse_args()
    env = {"PYTHONPATH": str(args.source.resolve())} if args.source else None
    only = set(args.only.split(",")) if args.only else None
    for name, attack in ATTACKS.items():
        if only and name.split()[0] not in only:
            continue
        with tempfile.TemporaryDirectory() as tmp, OtlpSink() as sink:
            starter = _Starter(Path(tmp), env)
            try:
                print(f"finding {name}: {attack(starter.start, sink)}", flush=True)
            except Exception as exc:
                print(f"finding {name}: failed: {exc!r}", flush=True)
            finally:
                for gateway in starter.started:
                    gateway.kill()


class _Starter:
    """Starts gateways in their own directories; remembers them to stop them."""

    def __init__(self, tmp: Path, env: dict[str, str] | None) -> None:
        self.tmp, self.env = tmp, env
        self.started: list[GatewayProcess] = []

    def start(self, config: dict[str, Any]) -> GatewayProcess:
        workdir = self.tmp / f"gw{len(self.started)}"
        workdir.mkdir()
        gateway = GatewayProcess(config, workdir, self.env)
        self.started.append(gateway)
        return gateway.start()


if __name__ == "__main__":
    os.environ.setdefault("OTELGATE_EVENT_LOOP", "uvloop")
    main()
