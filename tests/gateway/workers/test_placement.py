"""Where a batch is counted with workers: service health sees what observers see in one
process, also when the only pipeline runs in the supervisor and changes the batch (a worker
process and the supervisor's gateway, in this process, joined by a real link)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest
import yaml

from gateway.alerting.config import AlertingConfig
from gateway.config.loading import parse_config
from gateway.config.model import Config
from gateway.health.status import ExporterReport
from gateway.otlp.batch import Signal
from gateway.workers.central import CentralGateway
from gateway.workers.link import COUNT_HEALTH, LinkWriter, decode_batch, read_frames, socket_pair
from gateway.workers.status import WorkerSlot, WorkerStatus
from gateway.workers.worker import WorkerGateway
from tests.gateway.health.helpers import spans_batch

pytestmark = pytest.mark.timeout(60)


def _config(pipelines: Mapping[str, object]) -> Config:
    return parse_config(
        yaml.safe_dump(
            {
                "receivers": {"otlp": {"protocols": {"http": {"endpoint": "127.0.0.1:0"}}}},
                "processors": {
                    "resource/rename": {
                        "attributes": [
                            {"key": "service.name", "value": "checkout-v2", "action": "upsert"}
                        ]
                    },
                    "spanmetrics": {},
                },
                "exporters": {
                    "file": {"path": "traces.jsonl"},
                    "otlp/down": {"endpoint": "http://127.0.0.1:9", "protocol": "http/protobuf"},
                },
                "service": {"workers": 2, "pipelines": pipelines},
                "admin": {"endpoint": "127.0.0.1:0"},
                "alerting": {"enabled": False},
            }
        ),
        environ={},
    )


async def _relayed(config: Config) -> tuple[list[int], CentralGateway, WorkerGateway]:
    """One batch of service ``checkout`` through a worker, then the supervisor."""
    ours, theirs = socket_pair()
    link, _ = await LinkWriter.connect(theirs.detach())
    worker = WorkerGateway(config, 0, 2, link)
    central = CentralGateway(config, lambda: [])
    await central.start()
    for queue in worker.queues.values():
        await queue.start()
    try:
        routes = worker._routes("otlp")
        await routes[Signal.TRACES].consume(spans_batch("checkout", [0.1, 0.2], errors={1}))
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        await link.close()
        flags = []
        async for _, payload in read_frames(reader):
            receiver, batch, flag = decode_batch(payload)
            flags.append(flag)
            await central.relay_in(receiver, batch, flag)
        central.health.merge(worker.health.drain())
        writer.close()
    finally:
        for queue in worker.queues.values():
            await queue.shutdown(0.0)
        await central.stop(drain_timeout=1.0)
    return flags, central, worker


async def test_the_supervisor_counts_health_after_its_only_pipeline_renamed_the_service():
    pipelines = {"traces": {"receivers": ["otlp"], "processors": ["resource/rename", "spanmetrics"],
                            "exporters": ["file"]}}  # fmt: skip
    flags, central, _ = await _relayed(_config(pipelines))
    assert flags == [COUNT_HEALTH]
    assert central.health.names() == ["checkout-v2"]  # as one process: after the pipeline
    report = central.health.report("checkout-v2")
    assert report is not None and (report.requests, report.errors) == (2, 1)


async def test_a_worker_counts_health_after_its_only_pipeline_renamed_the_service():
    pipelines = {"traces": {"receivers": ["otlp"], "processors": ["resource/rename"],
                            "exporters": ["otlp/down"]}}  # fmt: skip
    flags, central, _ = await _relayed(_config(pipelines))
    assert flags == [0]  # relayed whole (the supervisor has not said what it needs yet)
    assert central.health.names() == ["checkout-v2"]  # counted by the worker, merged


async def test_alert_rules_on_exporters_read_every_process():
    pipelines = {"traces": {"receivers": ["otlp"], "exporters": ["otlp/down"]}}
    config = _config(pipelines).model_copy(update={"alerting": AlertingConfig()})
    failing = ExporterReport(
        "otlp/down", "failed", "connection refused", 1.0, None, queue_size=7, queue_capacity=10
    )
    status = WorkerStatus(index=0, pid=4242, state="running", accepted_items={},
                          exporters=[failing])  # fmt: skip
    slots = [WorkerSlot(0, pid=4242, state="running", last_status=status)]
    central = CentralGateway(config, lambda: slots)
    assert central.alerting is not None and central.alerting.sources is not None
    seen = await central.alerting.sources.observe()
    down = [e for e in seen.exporters if e.name == "otlp/down"]
    # the supervisor's own copy of the queue is idle; the worker's is failing: the total is
    assert [(e.state, e.queue_size, e.last_error) for e in down] == [
        ("failed", 7, "connection refused")
    ]
