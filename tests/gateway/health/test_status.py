"""Component health rules (gateway.health.status): usage levels, the worst level, exporter
reports and the gateway's status with its reasons."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry

from exporters.base import ExporterBase
from exporters.queue import ExporterQueue
from gateway.errors import RetryableError
from gateway.health.config import SystemHealthConfig, UsageThresholds
from gateway.health.status import (
    ExporterReport,
    ResourceCheck,
    exporter_report,
    gateway_status,
    system_checks,
    usage_level,
    worst,
)
from gateway.health.system import ProcessUsage, SystemSnapshot
from gateway.otlp.batch import Batch
from gateway.selfmetrics import GatewayMetrics
from tests.gateway.health.helpers import spans_batch


@pytest.mark.parametrize(
    ("utilization", "level"),
    [
        (0.0, "healthy"),
        (0.849, "healthy"),
        (0.85, "warning"),
        (0.95, "critical"),
        (1.0, "critical"),
    ],
)
def test_usage_levels(utilization, level):
    assert usage_level(utilization, UsageThresholds(warning=0.85, critical=0.95)) == level


def test_worst_level():
    assert worst([]) == "healthy"
    assert worst(["healthy", "critical", "warning"]) == "critical"


def exporter(name="otlp", state="ok", size=0, capacity=100, spool=None) -> ExporterReport:
    bytes_, max_bytes = spool or (None, None)
    return ExporterReport(name, state, "boom" if state != "ok" else None, None, None,
                          size, capacity, bytes_, max_bytes)  # fmt: skip


@pytest.mark.parametrize(
    ("not_ready", "exporters", "failed", "checks", "status", "reasons"),
    [
        ([], [exporter()], [], [], "healthy", []),
        ([], [exporter(state="retrying")], [], [], "degraded",
         ["exporter otlp is retrying: boom"]),
        ([], [exporter(size=80)], [], [], "degraded", ["exporter otlp queue is 80% full"]),
        ([], [exporter(size=1, spool=(900, 1000))], [], [], "degraded",
         ["exporter otlp queue is 90% full"]),
        ([], [], ["hostmetrics"], [], "degraded", ["receiver hostmetrics failed"]),
        # Host CPU is informational: other processes busy do not make the gateway degraded.
        ([], [], [], [ResourceCheck("cpu", "cpu", 0.99, "critical")], "healthy", []),
        ([], [], [], [ResourceCheck("process_cpu", "gateway process", 0.99, "critical")],
         "degraded", ["gateway event loop CPU at 99% of one core (critical)"]),
        ([], [], [], [ResourceCheck("disk", "/data", 0.97, "critical")], "unhealthy",
         ["disk /data at 97% (critical)"]),
        ([], [], [], [ResourceCheck("memory", "memory", 0.9, "warning")], "degraded",
         ["memory at 90% (warning)"]),
        (["pipeline traces cannot accept data (queue full)"], [exporter(state="failed")], [], [],
         "unhealthy", ["pipeline traces cannot accept data (queue full)",
                       "exporter otlp is failed: boom"]),
    ],
)  # fmt: skip
def test_gateway_status(not_ready, exporters, failed, checks, status, reasons):
    assert gateway_status(not_ready, exporters, failed, checks) == (status, reasons)


class Flaky(ExporterBase):
    async def push(self, batch: Batch) -> None:
        raise RetryableError("connection refused")


async def test_exporter_report_reads_the_queue():
    metrics = GatewayMetrics(CollectorRegistry())
    queue = ExporterQueue("otlp/down", Flaky(), metrics, capacity=10, num_consumers=1)
    await queue.start()
    try:
        queue.offer(spans_batch("s", [0.1] * 4))
        for _ in range(100):
            if queue.status.state == "retrying":
                break
            await asyncio.sleep(0.01)
        report = exporter_report(queue)
    finally:
        await queue.shutdown(0.1)
    assert report.name == "otlp/down" and report.state == "retrying"
    assert report.last_error == "connection refused" and report.last_error_at is not None
    assert (report.queue_size, report.queue_capacity) == (4, 10)
    assert report.queue_fill_ratio == pytest.approx(0.4)
    assert report.spool_bytes is None and report.spool_capacity_bytes is None


def test_exporter_report_reads_a_disk_spool_when_the_queue_has_one():
    queue = SimpleNamespace(
        name="otlp/spooled",
        status=SimpleNamespace(state="ok", last_error=None, last_error_at=None,
                               last_success_at=1.0),
        size=3,
        capacity=100,
        spool=SimpleNamespace(bytes=250, max_bytes=1000),
    )  # fmt: skip
    report = exporter_report(queue)  # type: ignore[arg-type]
    assert (report.spool_bytes, report.spool_capacity_bytes) == (250, 1000)
    assert report.queue_fill_ratio == 0.25  # the spool's bytes bound a spooled queue


@pytest.mark.parametrize(
    ("cores", "loop", "judged", "level"),
    [
        (1.6, 0.3, 0.3, "healthy"),  # worker threads busy, the loop is not: not degraded
        (1.0, 0.95, 0.95, "warning"),  # the loop keeps its core busy
        (1.5, None, 1.0, "critical"),  # loop thread unknown: the whole process, capped at 1
        (0.2, None, 0.2, "healthy"),
    ],
)
def test_own_cpu_check_judges_the_event_loop_thread(cores, loop, judged, level):
    process = ProcessUsage(
        cpu_utilization=cores / 4, memory_rss=1, threads=9, open_fds=3, cpu_cores=cores,
        loop_cpu=loop,
    )  # fmt: skip
    snapshot = SystemSnapshot(
        at=0.0, interval=10.0, cpu_modes={"idle": 0.0}, memory_total=100,
        memory_states={"used": 10}, filesystems=(), network=(), process=process,
    )  # fmt: skip
    config = SystemHealthConfig()
    own = [c for c in system_checks(snapshot, config) if c.resource == "process_cpu"]
    assert [(c.utilization, c.status) for c in own] == [(judged, level)]
    host = next(c for c in system_checks(snapshot, config) if c.resource == "cpu")
    assert host.status == "critical"  # host CPU is busy (idle 0) ...
    status, reasons = gateway_status([], [], [], system_checks(snapshot, config))
    assert "cpu at" not in " ".join(reasons)  # ... and informational only
    assert (status == "degraded") == (level != "healthy")
