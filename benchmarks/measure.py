"""One measured load run against one target: start the driver on the driver core, watch the
target's CPU (its whole process tree, supervisor and workers apart) and memory while it runs,
wait until the sink has everything, and compare what the driver had accepted with what was
delivered downstream. The load generator's own CPU (driver and sink) is measured too."""

from __future__ import annotations

import json
import math
import os
import resource
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from benchmarks import proctree
from benchmarks.payloads import CONTENT_TYPES, Index
from benchmarks.targets import DRIVER_CORE, Target

LUA = Path(__file__).with_name("otlp_post.lua")
TRANSPORTS = ("http/protobuf", "grpc", "http/json")
GRACE = 10.0  # seconds after the load for the last answers, before wrk is interrupted


class Sink:
    """The counting sink subprocess (benchmarks.sink) on the driver core."""

    def __init__(self, ports: list[int], control: int, workdir: Path) -> None:
        self.ports = ports
        self.url = f"http://127.0.0.1:{control}/counts"
        log = (workdir / "sink.log").open("ab")
        self.proc = subprocess.Popen(
            ["taskset", "-c", DRIVER_CORE, sys.executable, "-m", "benchmarks.sink",
             "--ports", ",".join(map(str, ports)), "--control", str(control)],
            stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).parent.parent,
        )  # fmt: skip
        log.close()
        self._ps = psutil.Process(self.proc.pid)  # taskset execs: the same pid
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                self.counts()
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("the sink did not start")

    def cpu_seconds(self) -> float:
        """User + system CPU time the sink has used so far."""
        times = self._ps.cpu_times()
        return float(times.user + times.system)

    def counts(self) -> dict[str, Any]:
        return dict(httpx.get(self.url, timeout=10).json())

    def items(self, signal_name: str) -> tuple[list[int], float]:
        """Items of ``signal_name`` received so far per sink port, and when the last came."""
        counts = self.counts()
        per_port = [int(counts[str(port)][signal_name]) for port in self.ports]
        return per_port, float(counts["last"][signal_name])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@dataclass
class Load:
    """What to send: signal, transport, and requests per second (0 = as fast as possible)."""

    signal: str
    transport: str
    rate: float
    seconds: float
    connections: int


@dataclass
class Result:
    """One run's figures (items are spans or log records)."""

    target: str
    transport: str
    signal: str
    level: str  # "fixed" | "max"
    rep: int
    seconds: float  # of load
    window: float  # from the driver being ready to the last item delivered
    accepted: int  # items in requests answered with success
    failed_requests: int  # non-2xx / gRPC errors
    socket_errors: int
    late: int  # requests the fixed-rate schedule had to skip
    delivered: list[int]  # items the sink got, per exporter
    cpu_seconds: float
    peak_rss: int
    p99_ms: float | None = None
    workers: str = "1"  # otelgate's --workers ("1": one process)
    worker_processes: int = 0  # worker processes it ran (0: one process)
    cpu_parts: dict[str, float] = field(default_factory=dict)  # main (supervisor), workers
    driver_cpu: float = math.nan  # CPU seconds of the load driver (wrk, grpc_load) after ready
    sink_cpu: float = math.nan  # CPU seconds of the counting sink over the window

    @property
    def items_per_second(self) -> float:
        """Fixed level: accepted / load seconds (the offered rate when sustained). Max level:
        delivered / window, so a queue filling up inside the target does not count."""
        if self.level == "fixed":
            return self.accepted / self.seconds
        return (self.delivered[0] if self.delivered else 0) / self.window

    @property
    def cpu_us_per_item(self) -> float:
        delivered = self.delivered[0] if self.delivered else 0
        return 1e6 * self.cpu_seconds / delivered if delivered else float("nan")

    def part_us_per_item(self, part: str) -> float:
        """CPU us per delivered item of one part of the target: ``main`` (the supervisor, or
        the only process) or ``workers``."""
        delivered = self.delivered[0] if self.delivered else 0
        seconds = self.cpu_parts.get(part, math.nan)
        return 1e6 * seconds / delivered if delivered else math.nan

    @property
    def load_cores(self) -> float:
        """Cores the load generator (driver + sink) used over the window."""
        return (self.driver_cpu + self.sink_cpu) / self.window

    @property
    def core_share(self) -> float:
        """The share of its core the target used over the window."""
        return self.cpu_seconds / self.window

    @property
    def complete(self) -> bool:
        return all(d == self.accepted for d in self.delivered)


def _driver(target: Target, load: Load, index: Index) -> tuple[list[str], dict[str, str]]:
    if load.transport == "grpc":
        command = [
            sys.executable, "-m", "benchmarks.grpc_load",
            "--target", f"127.0.0.1:{target.grpc_port}", "--signal", load.signal,
            "--payloads", str(index.directory), "--duration", str(load.seconds),
            "--rate", str(load.rate), "--concurrency", str(load.connections),
        ]  # fmt: skip
        if target.authorization:
            command += ["--authorization", target.authorization]
        return command, {}
    encoding = "json" if load.transport == "http/json" else "pb"
    body_set = index.get(load.signal, encoding)
    env = {
        "BENCH_DATA": str(index.path(body_set.data)),
        "BENCH_SIZES": str(index.path(body_set.sizes)),
        "BENCH_PATH": f"/v1/{load.signal}",
        "BENCH_CONTENT_TYPE": CONTENT_TYPES[encoding],
        "BENCH_RATE": str(load.rate),
        "BENCH_SECONDS": str(load.seconds),
        "BENCH_THREADS": "1",
    }
    if target.authorization:
        env["BENCH_AUTHORIZATION"] = target.authorization
    backstop = int(load.seconds + 60)
    command = ["wrk", "-t1", f"-c{load.connections}", f"-d{backstop}s", "--timeout", "20s",
               "-s", str(LUA), f"http://127.0.0.1:{target.http_port}"]  # fmt: skip
    return command, env


def _read_line(proc: subprocess.Popen[str], prefix: str, timeout: float) -> str | None:
    """The first stdout line starting with ``prefix`` (None at EOF or timeout)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()
            if not line:
                return None
            if line.startswith(prefix):
                return line
    return None


class _Watch:
    """Follows the target's memory while a run goes on, then waits for the sink to have
    everything the driver had accepted."""

    def __init__(self, target: Target, sink: Sink, signal_name: str) -> None:
        """Call before the driver starts: the counts it takes are this run's zero."""
        self.target, self.sink, self.signal = target, sink, signal_name
        self.before, _ = sink.items(signal_name)
        self.counts = self.before
        self.started = self.last_arrival = time.monotonic()
        self.parts0 = target.cpu_parts()
        self.parts: dict[str, float] = {}
        self.sink0 = sink.cpu_seconds()
        self.sink_cpu = 0.0
        self.peak_rss = target.rss()

    def driver_ready(self) -> None:
        """The load starts now: the window and the CPU count from here."""
        self.started = self.last_arrival = time.monotonic()
        self.parts0 = self.target.cpu_parts()
        self.sink0 = self.sink.cpu_seconds()

    @property
    def cpu(self) -> float:
        return self.parts.get("total", 0.0)

    def poll(self) -> None:
        self.peak_rss = max(self.peak_rss, self.target.rss())

    def settle(self, expected: int, quiet: float = 0.3, patience: float = 3.0) -> None:
        """Wait until every exporter delivered ``expected`` items and nothing more came for
        ``quiet`` s; short of ``expected``, give up once nothing came for ``patience`` s."""
        changed = time.monotonic()
        deadline = changed + 120
        while time.monotonic() < deadline:
            self.poll()
            counts, self.last_arrival = self.sink.items(self.signal)
            now = time.monotonic()
            if counts != self.counts:
                self.counts, changed = counts, now
            done = all(d >= expected for d in self.delivered)
            if now - changed >= (quiet if done else patience):
                break
            time.sleep(0.05)
        self.parts = proctree.delta(self.target.cpu_parts(), self.parts0)
        self.sink_cpu = self.sink.cpu_seconds() - self.sink0

    @property
    def delivered(self) -> list[int]:
        pairs = zip(self.counts, self.before, strict=True)
        return [a - b for a, b in pairs][: self.target.exporters]  # its ports come first


def run_load(target: Target, sink: Sink, load: Load, index: Index, level: str, rep: int) -> Result:
    """Drive ``load`` at ``target`` and measure it, from the driver being ready until the
    last item reached the sink."""
    command, env = _driver(target, load, index)
    watch = _Watch(target, sink, load.signal)
    reaped0 = _children_cpu()
    proc = subprocess.Popen(
        ["taskset", "-c", DRIVER_CORE, *command], stdout=subprocess.PIPE, text=True,
        env={**os.environ, **env}, cwd=Path(__file__).parent.parent,
    )  # fmt: skip
    if _read_line(proc, "BENCH-READY" if load.transport != "grpc" else "ready", 60) is None:
        proc.kill()
        raise RuntimeError(f"load driver did not start: {command}")
    watch.driver_ready()
    driver_times = psutil.Process(proc.pid).cpu_times()  # start-up: not part of the load
    stop_at = time.monotonic() + load.seconds + GRACE
    while proc.poll() is None:
        watch.poll()
        if load.transport != "grpc" and time.monotonic() >= stop_at:
            proc.send_signal(signal.SIGINT)  # answers still missing: give up on them
            stop_at = float("inf")
        time.sleep(0.1)
    summary = _read_line(proc, "BENCH " if load.transport != "grpc" else "{", 5)
    if summary is None:
        raise RuntimeError(f"load driver printed no summary: {command}")
    stats = json.loads(summary.removeprefix("BENCH "))
    driver_cpu = _children_cpu() - reaped0 - (driver_times.user + driver_times.system)
    items = index.items
    if load.transport == "grpc":
        failed, socket_errors, late = sum(stats["errors"].values()), 0, stats["late"]
        accepted, p99 = stats["ok"] * items, None
    else:
        failed, socket_errors, late = stats["non2xx"], stats["socket_errors"], 0
        accepted = (stats["requests"] - stats["non2xx"]) * items
        p99 = stats["p99_us"] / 1000
    watch.settle(accepted)
    return Result(
        target.name, load.transport, load.signal, level, rep, load.seconds,
        max(watch.last_arrival - watch.started, 1e-3), accepted, failed, socket_errors, late,
        watch.delivered, watch.cpu, watch.peak_rss, p99, target.workers,
        target.worker_processes, watch.parts, driver_cpu, watch.sink_cpu,
    )  # fmt: skip


def _children_cpu() -> float:
    """CPU seconds of this process's children that have exited and been waited for (the
    driver, once ``Popen.poll`` has reaped it)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
