"""Host and gateway-process resource usage, sampled with psutil.

:class:`SystemSampler` takes a :class:`SystemSnapshot` (CPU and memory of the host, the real
filesystems plus the ones holding the gateway's data, network interfaces, and the gateway
process itself); :func:`to_request` turns one into OTLP metrics named as in the OpenTelemetry
semantic conventions for system and process metrics. The latest snapshot is kept for
``/health``. Sampling is a few system calls; :meth:`SystemSampler.sample` is thread-safe so it
can run off the event loop.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psutil
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric

from gateway.otlp.builders import cumulative_sum, gateway_resource, gauge, number_point, scope

SCOPE = "otelgate.hostmetrics"
MAX_FILESYSTEMS = 32
MAX_INTERFACES = 32
# psutil's cpu_times() fields folded into the semantic conventions' cpu.mode values.
_CPU_MODES = {
    "user": "user",
    "nice": "nice",
    "system": "system",
    "idle": "idle",
    "iowait": "iowait",
    "irq": "interrupt",
    "softirq": "interrupt",
    "steal": "steal",
}
_MEMORY_STATES = ("used", "free", "cached", "buffers")
_READ_ONLY_TYPES = frozenset({"squashfs", "iso9660", "udf", "erofs"})


@dataclass(frozen=True, slots=True)
class FilesystemUsage:
    """One mounted filesystem; ``holds`` lists the gateway paths stored on it."""

    device: str
    mountpoint: str
    type: str
    total: int
    used: int
    free: int
    holds: tuple[str, ...] = ()

    @property
    def reserved(self) -> int:
        """Blocks neither used nor available to unprivileged users (root reserve)."""
        return max(0, self.total - self.used - self.free)

    @property
    def utilization(self) -> float:
        """Used share of the space users can write (as ``df`` shows it), 0..1."""
        usable = self.used + self.free
        return self.used / usable if usable else 0.0


@dataclass(frozen=True, slots=True)
class InterfaceIO:
    """Bytes through one network interface since boot."""

    name: str
    transmit: int
    receive: int


@dataclass(frozen=True, slots=True)
class ProcessUsage:
    """The gateway process."""

    cpu_utilization: float  # share of all CPUs
    memory_rss: int
    threads: int
    open_fds: int | None  # None where the OS has no file descriptor count
    cpu_cores: float = 0.0  # CPU seconds per second, all threads: 1.0 is one core kept busy
    loop_cpu: float | None = None  # the same for the event loop's thread alone (None: unknown)


@dataclass(frozen=True, slots=True)
class SystemSnapshot:
    """One sample. Utilizations are 0..1; CPU ones cover the time since the previous sample."""

    at: float  # wall clock, seconds
    interval: float  # seconds the CPU figures cover
    cpu_modes: dict[str, float]
    memory_total: int
    memory_states: dict[str, int]
    filesystems: tuple[FilesystemUsage, ...]
    network: tuple[InterfaceIO, ...]
    process: ProcessUsage

    @property
    def cpu_utilization(self) -> float:
        """Busy share of all CPUs: everything but idle and iowait."""
        return max(0.0, 1.0 - self.cpu_modes.get("idle", 0.0) - self.cpu_modes.get("iowait", 0.0))

    @property
    def memory_utilization(self) -> float:
        """``used / total`` (used = total - available, as the conventions define it)."""
        return self.memory_states.get("used", 0) / self.memory_total if self.memory_total else 0.0


def cpu_modes(before: Any, after: Any) -> dict[str, float]:
    """Share of CPU time per ``cpu.mode`` between two ``psutil.cpu_times()`` results."""
    spent: dict[str, float] = {}
    for field, mode in _CPU_MODES.items():
        if hasattr(after, field):
            delta = max(0.0, getattr(after, field) - getattr(before, field))
            spent[mode] = spent.get(mode, 0.0) + delta
    total = sum(spent.values())
    return {mode: (value / total if total > 0 else 0.0) for mode, value in spent.items()}


def memory_states(vm: Any) -> dict[str, int]:
    """``system.memory.state`` values from ``psutil.virtual_memory()`` (where available)."""
    states = {"used": max(0, int(vm.total) - int(vm.available)), "free": int(vm.free)}
    for name in ("cached", "buffers"):
        if hasattr(vm, name):
            states[name] = int(getattr(vm, name))
    return states


def _mountpoint_of(path: str) -> str:
    """The mount point a path lives on (its nearest existing ancestor's)."""
    current = os.path.abspath(path)
    while not os.path.exists(current) and current != os.path.dirname(current):
        current = os.path.dirname(current)
    while not os.path.ismount(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current


class SystemSampler:
    """Samples host and process usage; keeps the latest snapshot.

    ``watch_paths`` are directories the gateway writes (file exporters, spool, store); the
    filesystems holding them are always reported, even when they are of a type skipped
    otherwise (tmpfs, overlay), and their ``holds`` names the paths.
    """

    def __init__(self, watch_paths: Sequence[str] = ()) -> None:
        self.watch_paths = tuple(dict.fromkeys(os.path.abspath(p) for p in watch_paths))
        self.started_ns = time.time_ns()
        self.boot_ns = int(psutil.boot_time() * 1e9)
        self.latest: SystemSnapshot | None = None
        self._lock = threading.Lock()
        self._process = psutil.Process()
        self._cpu_count = psutil.cpu_count() or 1
        self._last_cpu = psutil.cpu_times()
        self._last_proc_cpu = self._process_cpu_seconds()
        self._last_mono = time.monotonic()
        self.loop_thread: int | None = None  # native id of the event loop's thread, once known
        self._last_loop: tuple[int, float] | None = None  # (thread id, its CPU seconds)

    def _process_cpu_seconds(self) -> float:
        times = self._process.cpu_times()
        return float(times.user + times.system)

    def _loop_cpu(self, elapsed: float) -> float | None:
        """CPU seconds per second of the event loop's thread since the previous sample (None
        until it is known and has a baseline, or where the OS gives no per-thread times)."""
        tid = self.loop_thread
        if tid is None:
            return None
        try:
            seconds = next(
                (t.user_time + t.system_time for t in self._process.threads() if t.id == tid), None
            )
        except (psutil.Error, OSError, NotImplementedError):
            seconds = None
        last, self._last_loop = self._last_loop, None if seconds is None else (tid, seconds)
        if seconds is None or last is None or last[0] != tid:
            return None
        return max(0.0, seconds - last[1]) / elapsed

    def sample(self) -> SystemSnapshot:
        """Take a snapshot now (and keep it as :attr:`latest`)."""
        with self._lock:
            now_mono = time.monotonic()
            elapsed = max(now_mono - self._last_mono, 1e-9)
            cpu = psutil.cpu_times()
            modes = cpu_modes(self._last_cpu, cpu)
            proc_cpu = self._process_cpu_seconds()
            proc_cores = max(0.0, proc_cpu - self._last_proc_cpu) / elapsed
            loop_cpu = self._loop_cpu(elapsed)
            proc_util = proc_cores / self._cpu_count
            self._last_cpu, self._last_proc_cpu, self._last_mono = cpu, proc_cpu, now_mono
            vm = psutil.virtual_memory()
            with self._process.oneshot():
                fds = self._process.num_fds() if hasattr(self._process, "num_fds") else None
                process = ProcessUsage(
                    cpu_utilization=min(1.0, proc_util),
                    memory_rss=int(self._process.memory_info().rss),
                    threads=int(self._process.num_threads()),
                    open_fds=fds,
                    cpu_cores=proc_cores,
                    loop_cpu=loop_cpu,
                )
            snapshot = SystemSnapshot(
                at=time.time(),
                interval=elapsed,
                cpu_modes=modes,
                memory_total=int(vm.total),
                memory_states=memory_states(vm),
                filesystems=tuple(self._filesystems()),
                network=tuple(self._network()),
                process=process,
            )
            self.latest = snapshot
            return snapshot

    def fresh(self, max_age: float) -> SystemSnapshot:
        """The latest snapshot if younger than ``max_age`` seconds, else a new one."""
        latest = self.latest
        if latest is not None and time.time() - latest.at <= max_age:
            return latest
        return self.sample()

    def _filesystems(self) -> Iterable[FilesystemUsage]:
        holds: dict[str, list[str]] = {}
        for path in self.watch_paths:
            holds.setdefault(_mountpoint_of(path), []).append(path)
        partitions = {p.mountpoint: p for p in psutil.disk_partitions(all=True)}
        # Real (device-backed) filesystems, then the ones holding gateway data.
        wanted = [p.mountpoint for p in psutil.disk_partitions(all=False)]
        wanted += [m for m in holds if m not in wanted]
        if not wanted:
            wanted = ["/"]
        seen_devices: set[str] = set()
        found = 0
        for mountpoint in wanted:
            part = partitions.get(mountpoint)
            device, fstype = (part.device, part.fstype) if part else ("", "")
            read_only = part is not None and "ro" in part.opts.split(",")
            held = tuple(holds.get(mountpoint, ()))
            # Bind mounts repeat a device (and may be single files): report it once. Read-only
            # images (snaps, CDs) are always full and never written: not worth reporting.
            if not held and (
                device in seen_devices
                or not os.path.isdir(mountpoint)
                or read_only
                or fstype in _READ_ONLY_TYPES
            ):
                continue
            try:
                usage = psutil.disk_usage(mountpoint)
            except OSError:
                continue
            seen_devices.add(device)
            yield FilesystemUsage(
                device,
                mountpoint,
                fstype,
                int(usage.total),
                int(usage.used),
                int(usage.free),
                held,
            )
            found += 1
            if found >= MAX_FILESYSTEMS:
                return

    def _network(self) -> Iterable[InterfaceIO]:
        try:
            counters = psutil.net_io_counters(pernic=True)
        except OSError:
            return
        for name in sorted(counters)[:MAX_INTERFACES]:
            io = counters[name]
            yield InterfaceIO(name, int(io.bytes_sent), int(io.bytes_recv))


def _metrics(s: SystemSnapshot, start_ns: int, boot_ns: int) -> Iterable[Metric]:
    t = int(s.at * 1e9)
    modes = sorted(s.cpu_modes.items())
    yield gauge(
        "system.cpu.utilization",
        "1",
        "Share of CPU time per mode over the last interval, across all logical CPUs.",
        (number_point(v, {"cpu.mode": m}, t) for m, v in modes),
    )
    states = [(k, s.memory_states[k]) for k in _MEMORY_STATES if k in s.memory_states]
    yield cumulative_sum(
        "system.memory.usage",
        "By",
        "Reports memory in use by state.",
        (number_point(v, {"system.memory.state": k}, t, start_ns) for k, v in states),
        monotonic=False,
    )
    total = s.memory_total or 1
    yield gauge(
        "system.memory.utilization",
        "1",
        "Share of memory bytes per state.",
        (number_point(v / total, {"system.memory.state": k}, t) for k, v in states),
    )
    usage, utilization = [], []
    for fs in s.filesystems:
        labels = {
            "system.device": fs.device,
            "system.filesystem.mountpoint": fs.mountpoint,
            "system.filesystem.type": fs.type,
        }
        for state, value in (("used", fs.used), ("free", fs.free), ("reserved", fs.reserved)):
            usage.append(
                number_point(value, {**labels, "system.filesystem.state": state}, t, start_ns)
            )
        utilization.append(number_point(fs.utilization, labels, t))
    yield cumulative_sum(
        "system.filesystem.usage", "By", "Filesystem bytes by state.", usage, monotonic=False
    )
    yield gauge(
        "system.filesystem.utilization",
        "1",
        "Used share of the space available to users.",
        utilization,
    )
    io = []
    for nic in s.network:
        for direction, value in (("transmit", nic.transmit), ("receive", nic.receive)):
            labels = {"network.interface.name": nic.name, "network.io.direction": direction}
            io.append(number_point(value, labels, t, boot_ns))
    yield cumulative_sum(
        "system.network.io", "By", "Bytes transmitted and received.", io, monotonic=True
    )
    p = s.process
    yield gauge(
        "process.cpu.utilization",
        "1",
        "CPU time of the gateway process over the last interval, divided by the "
        "elapsed time and the number of CPUs.",
        [number_point(p.cpu_utilization, {}, t)],
    )
    yield cumulative_sum(
        "process.memory.usage",
        "By",
        "Physical memory (RSS) of the gateway.",
        [number_point(p.memory_rss, {}, t, start_ns)],
        monotonic=False,
    )
    yield cumulative_sum(
        "process.thread.count",
        "{thread}",
        "Threads of the gateway process.",
        [number_point(p.threads, {}, t, start_ns)],
        monotonic=False,
    )
    if p.open_fds is not None:
        yield cumulative_sum(
            "process.unix.file_descriptor.count",
            "{file_descriptor}",
            "File descriptors open in the gateway process.",
            [number_point(p.open_fds, {}, t, start_ns)],
            monotonic=False,
        )


def to_request(
    snapshot: SystemSnapshot, start_ns: int, boot_ns: int
) -> ExportMetricsServiceRequest:
    """The snapshot as one OTLP metrics request with the gateway's resource.

    ``start_ns`` starts the up-down counters (gateway start); ``boot_ns`` the network
    counters, which count since boot.
    """
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.CopyFrom(gateway_resource())
    sm = rm.scope_metrics.add()
    sm.scope.CopyFrom(scope(SCOPE))
    sm.metrics.extend(_metrics(snapshot, start_ns, boot_ns))
    return request
