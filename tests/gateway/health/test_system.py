"""Host and process sampling with psutil, and the OTLP metrics made from it."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import namedtuple

import psutil
import pytest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

from gateway.config.loading import default_config, parse_config
from gateway.health.data_paths import data_paths
from gateway.health.system import (
    FilesystemUsage,
    SystemSampler,
    cpu_modes,
    memory_states,
    to_request,
)
from gateway.otlp.batch import Batch, Signal
from gateway.otlp.builders import instance_id
from gateway.otlp.validation import validate
from gateway.receivers.hostmetrics import HostMetricsReceiver

CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE

# name -> (kind, unit, monotonic or None for gauges, data point attribute keys)
EXPECTED = {
    "system.cpu.utilization": ("gauge", "1", None, {"cpu.mode"}),
    "system.memory.usage": ("sum", "By", False, {"system.memory.state"}),
    "system.memory.utilization": ("gauge", "1", None, {"system.memory.state"}),
    "system.filesystem.usage": ("sum", "By", False, {"system.device", "system.filesystem.mountpoint", "system.filesystem.type", "system.filesystem.state"}),  # noqa: E501
    "system.filesystem.utilization": ("gauge", "1", None, {"system.device", "system.filesystem.mountpoint", "system.filesystem.type"}),  # noqa: E501
    "system.network.io": ("sum", "By", True, {"network.interface.name", "network.io.direction"}),
    "process.cpu.utilization": ("gauge", "1", None, set()),
    "process.memory.usage": ("sum", "By", False, set()),
    "process.thread.count": ("sum", "{thread}", False, set()),
    "process.unix.file_descriptor.count": ("sum", "{file_descriptor}", False, set()),
}  # fmt: skip


def labels(point) -> dict[str, str]:
    return {kv.key: kv.value.string_value for kv in point.attributes}


def value(point) -> float:
    return point.as_int if point.HasField("as_int") else point.as_double


def test_a_sample_becomes_valid_otlp_with_semantic_convention_names(tmp_path):
    sampler = SystemSampler([str(tmp_path / "data")])
    busy_until = time.monotonic() + 0.2
    while time.monotonic() < busy_until:  # some CPU time for the process to report
        sum(range(1000))
    snapshot = sampler.sample()
    assert sampler.latest is snapshot
    request = to_request(snapshot, sampler.started_ns, sampler.boot_ns)
    assert validate(Signal.METRICS, request).count == 0

    [rm] = request.resource_metrics
    resource = labels(rm.resource)
    assert resource["service.name"] == "otelgate"
    assert resource["service.instance.id"] == instance_id()
    assert resource["host.name"] and resource["os.type"] == "linux"
    assert resource["host.arch"] in ("amd64", "arm64", "x86", "ppc64", "s390x")
    [sm] = rm.scope_metrics
    assert sm.scope.name == "otelgate.hostmetrics"
    metrics = {m.name: m for m in sm.metrics}
    assert set(metrics) == set(EXPECTED)
    for name, (kind, unit, monotonic, keys) in EXPECTED.items():
        metric = metrics[name]
        assert metric.WhichOneof("data") == kind, name
        assert metric.unit == unit, name
        data = getattr(metric, kind)
        assert data.data_points, name
        if kind == "sum":
            assert data.aggregation_temporality == CUMULATIVE
            assert data.is_monotonic is monotonic
        for point in data.data_points:
            assert set(labels(point)) == keys, name
            assert point.time_unix_nano > 0
            if kind == "sum":
                assert 0 < point.start_time_unix_nano <= point.time_unix_nano
            if unit == "1":
                assert 0.0 <= value(point) <= 1.0, name

    cpu = {
        labels(p)["cpu.mode"]: value(p) for p in metrics["system.cpu.utilization"].gauge.data_points
    }
    assert {"user", "system", "idle"} <= set(cpu)
    assert sum(cpu.values()) == pytest.approx(1.0, abs=1e-6) or sum(cpu.values()) == 0.0
    memory = {
        labels(p)["system.memory.state"]: value(p)
        for p in metrics["system.memory.usage"].sum.data_points
    }
    total = psutil.virtual_memory().total
    assert set(memory) >= {"used", "free"} and 0 < memory["used"] < total
    # The filesystem holding the data directory is reported (even though it does not exist yet).
    usage = metrics["system.filesystem.usage"].sum.data_points
    mounts = {labels(p)["system.filesystem.mountpoint"] for p in usage}
    holding = [fs for fs in snapshot.filesystems if fs.holds]
    assert [fs.holds for fs in holding] == [(str(tmp_path / "data"),)]
    assert holding[0].mountpoint in mounts
    states = {labels(p)["system.filesystem.state"] for p in usage}
    assert {"used", "free"} <= states <= {"used", "free", "reserved"}
    directions = {
        labels(p)["network.io.direction"] for p in metrics["system.network.io"].sum.data_points
    }
    assert directions == {"transmit", "receive"}
    rss = value(metrics["process.memory.usage"].sum.data_points[0])
    assert rss == pytest.approx(psutil.Process().memory_info().rss, rel=0.5)
    fds = value(metrics["process.unix.file_descriptor.count"].sum.data_points[0])
    assert abs(fds - len(os.listdir("/proc/self/fd"))) <= 3
    assert value(metrics["process.thread.count"].sum.data_points[0]) >= 1
    assert value(metrics["process.cpu.utilization"].gauge.data_points[0]) > 0


Times = namedtuple("Times", "user nice system idle iowait irq softirq steal guest")


def test_cpu_modes_are_shares_of_the_time_between_samples():
    before = Times(100, 0, 50, 1000, 10, 1, 1, 0, 5)
    after = Times(130, 0, 60, 1050, 10, 3, 2, 0, 9)  # 30 + 10 + 50 + 3 (irq+softirq) = 93
    modes = cpu_modes(before, after)
    assert modes["user"] == pytest.approx(30 / 93)
    assert modes["interrupt"] == pytest.approx(3 / 93)
    assert modes["idle"] == pytest.approx(50 / 93)
    assert "guest" not in modes  # counted inside user by Linux already
    assert sum(modes.values()) == pytest.approx(1.0)
    assert cpu_modes(after, after)["idle"] == 0.0  # no time passed: nothing to divide


def test_memory_states_follow_the_conventions():
    VM = namedtuple("VM", "total available free cached buffers")
    assert memory_states(VM(1000, 700, 100, 500, 50)) == {
        "used": 300, "free": 100, "cached": 500, "buffers": 50
    }  # fmt: skip
    Bare = namedtuple("Bare", "total available free")  # e.g. Windows: no cached/buffers
    assert memory_states(Bare(1000, 400, 400)) == {"used": 600, "free": 400}


def test_filesystem_utilization_is_what_users_can_write():
    fs = FilesystemUsage("/dev/a", "/", "ext4", total=1000, used=450, free=450)
    assert fs.reserved == 100
    assert fs.utilization == 0.5
    assert FilesystemUsage("x", "/x", "tmpfs", 0, 0, 0).utilization == 0.0


def test_data_paths_are_the_directories_the_gateway_writes(tmp_path):
    config = parse_config(
        f"""
receivers: {{otlp: {{protocols: {{grpc: }}}}}}
exporters:
  file: {{path: {tmp_path}/out/traces.jsonl}}
  prometheus: {{path: /metrics/otlp}}
service: {{pipelines: {{traces: {{receivers: [otlp], exporters: [file]}},
                       metrics: {{receivers: [otlp], exporters: [prometheus]}}}}}}
""",
        environ={},
    )
    assert data_paths(config, environ={}) == [f"{tmp_path}/out"]  # not a URL path
    (tmp_path / "data").mkdir()
    found = data_paths(config, environ={"OTELGATE_DATA_DIR": str(tmp_path / "data")})
    assert found == [f"{tmp_path}/out", f"{tmp_path}/data"]  # the data directory, once it exists
    assert data_paths(default_config({}), environ={}) == ["./otelgate-data"]


async def test_hostmetrics_receiver_emits_on_its_interval_for_its_own_pipelines():
    emitted: list[tuple[Batch, str | None]] = []

    async def emit(batch: Batch, source: str | None) -> bool:
        emitted.append((batch, source))
        return True

    receiver = HostMetricsReceiver("hostmetrics/fast", SystemSampler(), 0.05, emit)
    await receiver.start()
    try:
        for _ in range(200):
            if len(emitted) >= 3:
                break
            await asyncio.sleep(0.02)
    finally:
        await receiver.stop()
    assert len(emitted) >= 3
    batch, source = emitted[0]
    assert source == "hostmetrics/fast"
    assert batch.signal is Signal.METRICS and batch.items > 10
    assert receiver.status.state == "ok" and receiver.status.last_run_at is not None
    count = len(emitted)
    await asyncio.sleep(0.15)
    assert len(emitted) == count  # stopped means stopped


async def test_a_failing_sample_marks_the_receiver_failed_and_keeps_going(monkeypatch):
    async def emit(batch: Batch, source: str | None) -> bool:
        return True

    sampler = SystemSampler()
    receiver = HostMetricsReceiver("hostmetrics", sampler, 10.0, emit)

    def broken() -> None:
        raise psutil.AccessDenied(pid=1)

    monkeypatch.setattr(sampler, "sample", broken)
    assert await receiver.collect() is False
    assert receiver.status.state == "failed" and "sampling failed" in str(
        receiver.status.last_error
    )
    monkeypatch.undo()
    assert await receiver.collect() is True
    assert receiver.status.state == "ok" and receiver.status.last_error is None


def test_loop_cpu_is_the_cpu_of_the_event_loops_thread_alone():
    sampler = SystemSampler()
    assert sampler.sample().process.loop_cpu is None  # the loop's thread is not known yet
    sampler.loop_thread = threading.get_native_id()
    assert sampler.sample().process.loop_cpu is None  # its first reading is the baseline
    spent = time.thread_time()
    idle = threading.Thread(target=time.sleep, args=(0.3,))  # another thread, not busy
    idle.start()
    deadline = time.thread_time() + 0.3
    while time.thread_time() < deadline:  # this thread busy for 0.3 s of CPU
        pass
    idle.join()
    spent = time.thread_time() - spent
    snapshot = sampler.sample()
    assert snapshot.process.loop_cpu is not None
    # The sampler's figure is this thread's CPU time over the interval (clock ticks: 10 ms).
    assert abs(snapshot.process.loop_cpu * snapshot.interval - spent) < 0.05
    sampler.loop_thread = 2**31 - 1  # a thread that does not exist: unknown, not zero
    assert sampler.sample().process.loop_cpu is None
