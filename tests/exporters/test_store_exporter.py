"""The ``store`` exporter: its config (a queue that sheds), the checks across sections, and
logs and spans written through it and read back through its admin routes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from exporters.base import Refused
from exporters.sending import queue_around
from exporters.store import StoreExporter, StoreExporterConfig, WriteBudget, create_store
from gateway.config.issues import ConfigError
from gateway.config.loading import default_config, parse_config
from gateway.otlp.batch import Batch, Signal
from gateway.registry import Host
from gateway.selfmetrics import GatewayMetrics
from gateway.store.config import StoreConfig
from tests.gateway.store.telemetry_data import SpanSpec, log_fact, logs_batch, spans_batch

PIPELINES = {"traces": {"receivers": ["otlp"], "exporters": ["store"]},
             "logs": {"receivers": ["otlp"], "exporters": ["store"]}}  # fmt: skip


def config_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    otlp = {"otlp": {"protocols": {"http": {"endpoint": "127.0.0.1:4318"}}}}
    text = yaml.safe_dump({"receivers": otlp, **data})
    with pytest.raises(ConfigError) as caught:
        parse_config(text, environ={})
    return [(i.path, i.message) for i in caught.value.errors]


def test_the_queue_sheds_by_default_and_cannot_refuse() -> None:
    queue = StoreExporterConfig.model_validate({}).sending_queue
    assert (queue.on_full, queue.num_consumers, queue.storage) == ("drop", 1, "memory")
    partial = StoreExporterConfig.model_validate({"sending_queue": {"queue_size": 10}})
    assert (partial.sending_queue.on_full, partial.sending_queue.queue_size) == ("drop", 10)
    with pytest.raises(ValidationError, match="on_full must be drop"):
        StoreExporterConfig.model_validate({"sending_queue": {"on_full": "refuse"}})
    with pytest.raises(ValidationError, match="storage must be memory"):
        StoreExporterConfig.model_validate({"sending_queue": {"storage": "disk"}})


def test_config_checks_have_paths() -> None:
    service = {"pipelines": PIPELINES}
    assert config_problems(
        {"exporters": {"store": None}, "service": service, "store": {"enabled": False}}
    ) == [("store.enabled", "exporter 'store' writes into the store: store.enabled must be true")]
    two = {"traces": {"receivers": ["otlp"], "exporters": ["store", "store/b"]}}
    assert config_problems(
        {"exporters": {"store": None, "store/b": None}, "service": {"pipelines": two}}
    ) == [("exporters.store/b", "only one store exporter is allowed (already: 'store')")]
    metrics = {"metrics": {"receivers": ["otlp"], "exporters": ["store"]}}
    assert config_problems({"exporters": {"store": None}, "service": {"pipelines": metrics}}) == [
        ("service.pipelines.metrics.exporters[0]",
         "exporter 'store' takes only traces and logs, not metrics")
    ]  # fmt: skip
    bad = config_problems(
        {"exporters": {"store": None}, "service": service,
         "store": {"retention": "soon", "max_size_mib": 0}, "errors": {"samples_per_group": 0}}
    )  # fmt: skip
    assert {path for path, _ in bad} == {
        "store.retention",
        "store.max_size_mib",
        "errors.samples_per_group",
    }


def test_the_embedded_default_stores_traces_and_logs() -> None:
    config = default_config({})
    pipelines = config.service.pipelines
    assert "store" in pipelines["traces"].exporters and "store" in pipelines["logs"].exporters
    assert "store" not in pipelines["metrics"].exporters
    assert config.errors.enabled and config.store.retention == 7 * 86400


def test_logs_and_spans_go_in_and_come_out(tmp_path: Path) -> None:
    async def run() -> StoreExporter:
        exporter = StoreExporter(tmp_path / "o.db", StoreConfig(), lambda _: ["abc"])
        await exporter.start()
        assert await exporter.push(logs_batch(log_fact(i, 10) for i in range(10))) is None
        root = SpanSpec(1, None, "shop", "checkout", 0, 30)
        spans = spans_batch(7, [root, SpanSpec(2, 1, "db", "query", 5, 20)])
        assert await exporter.push(spans) is None
        metrics = Batch(Signal.METRICS, Signal.METRICS.request_type(), 3)
        assert await exporter.push(metrics) is None  # metrics are not stored
        bad = spans_batch(8, [root])
        bad.request.resource_spans[0].scope_spans[0].spans[0].trace_id = b"\0" * 16  # type: ignore[union-attr]
        bad.mark_modified()
        refused = await exporter.push(bad)
        assert isinstance(refused, Refused) and refused.items == 1
        return exporter

    exporter = asyncio.run(run())
    app = FastAPI()
    app.include_router(exporter.admin_router())
    with TestClient(app) as client:
        assert len(client.get("/logs").json()["logs"]) == 10
        found = client.get("/traces").json()["traces"]
        assert found, found
        detail = client.get(f"/traces/{found[0]['trace_id']}").json()
        assert detail["error_groups"] == ["abc"]
    asyncio.run(exporter.shutdown())
    app = FastAPI()
    app.include_router(exporter.admin_router())
    with TestClient(app) as client:
        closed = client.get("/logs")
        assert closed.status_code == 503 and "not open" in closed.json()["detail"]


def test_the_store_reports_its_size_and_deletions(tmp_path: Path) -> None:
    metrics = GatewayMetrics(CollectorRegistry())
    settings = StoreConfig(path=str(tmp_path / "o.db"), retention=60)
    host = Host(metrics=metrics, emit=lambda *_: None, store=settings)  # type: ignore[arg-type]
    exporter = create_store("store", StoreExporterConfig(), host)

    async def run() -> None:
        await exporter.start()
        await exporter.push(logs_batch(log_fact(i, 5) for i in range(5)))  # from 2023: too old
        assert exporter.writer is not None
        exporter.writer.enforce_retention()
        await exporter.shutdown()

    asyncio.run(run())
    registry = metrics.registry
    assert registry.get_sample_value("otelgate_store_max_size_bytes") == 1024 * 1024 * 1024
    deleted = registry.get_sample_value(
        "otelgate_store_deleted_items_total", {"signal": "logs", "reason": "age"}
    )
    assert deleted == 5
    assert (registry.get_sample_value("otelgate_store_file_bytes") or 0) > 0


def test_the_write_budget_takes_whole_batches_at_the_configured_rate() -> None:
    now = [0.0]
    budget = WriteBudget(100, clock=lambda: now[0])
    assert budget.take(80) and budget.take(80)  # a batch goes whole while a token is left
    assert not budget.take(1)  # 60 in debt
    now[0] += 0.5
    assert not budget.take(1)  # -10: still in debt
    now[0] += 0.2
    assert budget.take(50)
    assert WriteBudget(0).take(10**9)  # 0: no limit


def test_over_budget_batches_are_shed_and_counted_as_dropped(tmp_path: Path) -> None:
    metrics = GatewayMetrics(CollectorRegistry())
    settings = StoreConfig(path=str(tmp_path / "o.db"), max_write_rate=15)
    host = Host(metrics=metrics, emit=lambda *_: None, store=settings)  # type: ignore[arg-type]
    config = StoreExporterConfig.model_validate({"sending_queue": {"merge_batches": False}})
    queue = queue_around("store", create_store("store", config, host), config, metrics)

    async def run() -> None:
        await queue.start()
        for start in range(0, 40, 10):
            assert await queue.put(logs_batch(log_fact(i, 40) for i in range(start, start + 10)))
        await queue.shutdown(10)

    asyncio.run(run())
    registry = metrics.registry
    labels = {"exporter": "store", "signal": "logs"}
    assert registry.get_sample_value("otelgate_exporter_sent_items_total", labels) == 20
    assert registry.get_sample_value("otelgate_exporter_dropped_items_total", labels) == 20
    assert registry.get_sample_value("otelgate_exporter_failed_items_total", labels) is None
