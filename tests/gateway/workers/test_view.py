"""``/health`` of a gateway with worker processes: exporters per process and in total,
receivers listed once, the workers themselves (pure functions, then a real ``/health``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.config.loading import parse_config
from gateway.health.status import ExporterReport
from gateway.registry import ReceiverReport
from gateway.service import Gateway
from gateway.workers.status import WorkerSlot, WorkerStatus
from gateway.workers.view import (
    combine_exporters,
    exporter_health,
    merge_receivers,
    total_report,
    worker_reasons,
    workers_health,
)
from tests.factories import health_config_text

pytestmark = pytest.mark.timeout(60)


IDLE = ExporterReport("otlp", "ok", None, None, None, queue_size=0, queue_capacity=100)


def report(name: str = "otlp", **fields: Any) -> ExporterReport:
    return replace(IDLE, name=name, **fields)


def slot(
    index: int,
    exporters: Sequence[ExporterReport] = (),
    receivers: dict[str, tuple[str, ReceiverReport]] | None = None,
    *,
    state: str = "running",
    pid: int | None = None,
    status_pid: int | None = None,
    restarts: int = 0,
    not_ready: Sequence[str] = (),
) -> WorkerSlot:
    """Slot ``index``; its process (pid 1000 + index) reported once, unless the slot is
    restarting (no process; the report is the dead one's) or ``status_pid`` says whose it is."""
    pid = 1000 + index if pid is None and state != "restarting" else pid
    status = WorkerStatus(
        index,
        status_pid or pid or 999,
        "running",
        {"traces": 10 * (index + 1)},
        exporters=list(exporters),
        receivers=receivers or {},
        not_ready=list(not_ready),
    )
    return WorkerSlot(
        index, pid=pid, state=state, restarts=restarts, started_at=1_699_999_990.0,
        last_status=status, last_status_at=1_700_000_000.0,
    )  # fmt: skip


def test_total_sums_queues_and_spools_and_takes_the_worst_state() -> None:
    total = total_report(
        "otlp",
        [
            report(queue_size=5, spool_bytes=None, last_success_at=10.0),
            report(queue_size=7, state="retrying", last_error="503", last_error_at=20.0,
                   spool_bytes=100, spool_capacity_bytes=1000, last_success_at=30.0),
            report(queue_size=1, state="failed", last_error="400", last_error_at=25.0,
                   spool_bytes=50, spool_capacity_bytes=1000, spool_problem="disk full",
                   spool_problem_since=5.0),
        ],
    )  # fmt: skip
    assert total.state == "failed"
    assert (total.queue_size, total.queue_capacity) == (13, 300)
    assert (total.spool_bytes, total.spool_capacity_bytes) == (150, 2000)
    assert (total.last_error, total.last_error_at) == ("400", 25.0)  # the most recent
    assert total.last_success_at == 30.0
    assert (total.spool_problem, total.spool_problem_since) == ("disk full", 5.0)
    no_spool = total_report("otlp", [report(), report()])
    assert (no_spool.spool_bytes, no_spool.spool_capacity_bytes, no_spool.state) == (
        None, None, "ok"
    )  # fmt: skip


def test_combine_lists_each_process_and_only_live_workers() -> None:
    own = [report("prometheus", queue_size=3), report("otlp", queue_size=1)]
    slots = [
        slot(1, [report("otlp", queue_size=20, state="retrying", last_error="timeout")]),
        slot(0, [report("otlp", queue_size=10), report("loki", queue_size=4)]),
        # A report of the process that died: not counted any more.
        slot(2, [report("otlp", queue_size=99)], state="restarting", restarts=1),
        # A new process whose first report has not arrived: the old one is not counted.
        slot(3, [report("otlp", queue_size=99)], pid=2000, status_pid=1003),
    ]
    combined = {total.name: (total, parts) for total, parts in combine_exporters(own, slots)}
    assert list(combined) == ["prometheus", "otlp", "loki"]
    total, parts = combined["otlp"]
    assert [p for p, _ in parts] == ["supervisor", "worker-0", "worker-1"]
    assert (total.queue_size, total.queue_capacity, total.state) == (31, 300, "retrying")
    assert [p for p, _ in combined["prometheus"][1]] == ["supervisor"]
    assert [p for p, _ in combined["loki"][1]] == ["worker-0"]
    health = exporter_health(total, parts)
    assert health.queue_size == 31 and health.queue_fill_ratio == pytest.approx(31 / 300)
    assert health.workers is not None
    assert [(w.process, w.status, w.queue_size) for w in health.workers] == [
        ("supervisor", "ok", 1), ("worker-0", "ok", 10), ("worker-1", "retrying", 20)
    ]  # fmt: skip
    assert exporter_health(total).workers is None


def test_receivers_are_listed_once_ok_when_one_live_worker_is_ok() -> None:
    own = {"hostmetrics": ("hostmetrics", ReceiverReport("ok", last_run_at=5.0))}
    otlp_ok = ("otlp", ReceiverReport("ok", ["http 0.0.0.0:4318"]))
    otlp_failed = ("otlp", ReceiverReport("failed", [], last_error="bind"))
    merged = merge_receivers(
        own,
        [slot(0, receivers={"otlp": otlp_failed}), slot(1, receivers={"otlp": otlp_ok})],
    )
    assert list(merged) == ["hostmetrics", "otlp"]
    assert merged["hostmetrics"] == own["hostmetrics"]
    assert merged["otlp"] == ("otlp", ReceiverReport("ok", ["http 0.0.0.0:4318"], "bind"))
    # Only a dead process said ok: the receiver is not running there any more.
    dead = merge_receivers(
        {},
        [slot(0, receivers={"otlp": otlp_failed}),
         slot(1, receivers={"otlp": otlp_ok}, state="restarting")],
    )  # fmt: skip
    assert dead["otlp"][1].status == "failed"
    assert dead["otlp"][1].endpoints == ["http 0.0.0.0:4318"]
    gone = merge_receivers({}, [slot(0, receivers={"otlp": otlp_ok}, state="stopped")])
    assert gone["otlp"][1].status == "stopped"


def test_workers_health_and_reasons() -> None:
    slots = [
        slot(1, state="restarting", restarts=2),
        slot(0, restarts=1, not_ready=["pipeline traces is not accepting"]),
    ]
    health = workers_health(slots)
    assert (health.count, health.restarts) == (2, 3)
    first, second = health.workers
    assert (first.index, first.pid, first.state, first.accepted_items) == (
        0, 1000, "running", {"traces": 10}
    )  # fmt: skip
    assert first.not_ready == ["pipeline traces is not accepting"]
    assert first.started_at is not None and first.last_report_at is not None
    assert (second.pid, second.state, second.accepted_items, second.not_ready) == (
        None, "restarting", {}, []
    )  # fmt: skip
    full = report("otlp", queue_size=90)
    combined = combine_exporters([report("otlp")], [slot(0, [full])])
    assert worker_reasons(slots, combined) == [
        "worker-0 not ready: pipeline traces is not accepting",
        "worker-1 is restarting",
        "exporter otlp queue in worker-0 is 90% full",
    ]


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    gw = Gateway(parse_config(health_config_text(tmp_path, cache_ttl=0), environ={}))
    await gw.start()
    yield gw
    await gw.stop(drain_timeout=1.0)


async def test_health_endpoint_shows_workers_and_exporter_parts(gateway: Gateway) -> None:
    otlp = ("otlp", ReceiverReport("ok", ["http 127.0.0.1:4318"]))
    slots = [
        slot(0, [report("loki", queue_size=3, queue_capacity=10)], {"otlp/w": otlp}),
        slot(1, [report("loki", queue_size=2, queue_capacity=10, spool_bytes=64,
                        spool_capacity_bytes=128)], {"otlp/w": otlp}, restarts=1),
    ]  # fmt: skip
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gateway.admin_app), base_url="http://admin"
    ) as client:
        single = (await client.get("/health")).json()
        assert single["workers"] is None
        assert all(e["workers"] is None for e in single["exporters"])
        gateway.health_api.worker_slots = lambda: slots
        body = (await client.get("/health")).json()
    assert body["workers"]["count"] == 2 and body["workers"]["restarts"] == 1
    assert [w["pid"] for w in body["workers"]["workers"]] == [1000, 1001]
    assert body["workers"]["workers"][1]["accepted_items"] == {"traces": 20}
    exporters = {e["name"]: e for e in body["exporters"]}
    assert [p["process"] for p in exporters["file"]["workers"]] == ["supervisor"]
    loki = exporters["loki"]
    assert (loki["queue_size"], loki["queue_capacity"], loki["status"]) == (5, 20, "ok")
    assert (loki["spool_bytes"], loki["spool_capacity_bytes"]) == (64, 128)
    assert loki["queue_fill_ratio"] == 0.5  # the spool bounds the queue
    assert [(p["process"], p["queue_size"], p["spool_bytes"]) for p in loki["workers"]] == [
        ("worker-0", 3, None), ("worker-1", 2, 64)
    ]  # fmt: skip
    receivers = {r["name"]: r for r in body["components"]["receivers"]}
    assert set(receivers) == {"otlp", "hostmetrics", "otlp/w"}
    assert receivers["otlp/w"]["status"] == "ok"
    assert receivers["otlp/w"]["endpoints"] == ["http 127.0.0.1:4318"]
