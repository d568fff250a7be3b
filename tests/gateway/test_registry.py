"""Every registered component: created from its minimal config, started and stopped (like the
Collector's generated lifecycle tests), and kept out of pipelines of signals it cannot take; and
the type a component id names."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from exporters.sending import queue_around
from exporters.settings import ExporterSettings
from gateway.components import REGISTRY
from gateway.config.issues import ConfigError
from gateway.config.loading import parse_config
from gateway.config.model import Config
from gateway.health.system import SystemSampler
from gateway.listeners.http_guard import ConnectionGuard, HttpLimits
from gateway.listeners.settings import HttpListenerSettings
from gateway.otlp.batch import Batch, Signal
from gateway.receivers.admission import Admission
from gateway.registry import (
    SECTIONS,
    AnyFactory,
    ComponentFactory,
    Host,
    Registry,
    UnknownComponentError,
    component_type,
)
from gateway.selfmetrics import GatewayMetrics

FACTORIES = [f for kind in SECTIONS for f in REGISTRY.types(kind).values()]


def _id(factory: AnyFactory) -> str:
    return f"{factory.kind}:{factory.type_name}"


def _host(metrics: GatewayMetrics, emitted: list[Batch]) -> Host:
    async def emit(batch: Batch, source: str | None) -> bool:
        emitted.append(batch)
        return True

    def guard(listener: str, settings: HttpListenerSettings) -> ConnectionGuard:
        return ConnectionGuard(listener, HttpLimits.of(settings), metrics.connections)

    return Host(
        metrics=metrics,
        emit=emit,
        admission=Admission(metrics, max_inflight_bytes=1 << 20, max_loop_delay=0),
        sampler=SystemSampler(),
        guard=guard,
    )


def test_every_kind_has_components_and_the_defaults_are_registered() -> None:
    assert set(REGISTRY.types("receiver")) >= {"otlp", "hostmetrics"}
    assert set(REGISTRY.types("processor")) >= {"resource", "spanmetrics"}
    assert set(REGISTRY.types("exporter")) >= {
        "otlp", "file", "jaeger", "loki", "prometheus", "prometheusremotewrite",
    }  # fmt: skip
    for factory in FACTORIES:
        assert factory.signals, f"{_id(factory)} takes no signal"
        assert factory.signals <= set(Signal)


@pytest.mark.parametrize("factory", FACTORIES, ids=_id)
async def test_created_from_its_minimal_config_started_and_stopped(
    factory: AnyFactory, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # examples write relative paths (the file exporter's)
    config = factory.config.model_validate(dict(factory.example))
    metrics = GatewayMetrics(CollectorRegistry())
    emitted: list[Batch] = []
    host = _host(metrics, emitted)
    name = f"{factory.type_name}/lifecycle"
    if factory.kind == "exporter":
        assert isinstance(config, ExporterSettings)
        queue = queue_around(name, REGISTRY.exporter(name, config, host), config, metrics)
        await queue.start()
        await queue.shutdown(5.0)
        assert queue.status.state in ("ok", "retrying", "failed")
    elif factory.kind == "processor":
        processor = REGISTRY.processor(name, config, host)
        assert processor.name == name
        await processor.start()
        await processor.stop()
    else:
        receiver = REGISTRY.receiver(name, config, host)
        receiver.bind()
        await receiver.start()
        try:
            assert receiver.report().status == "ok"
            # a receiver that listens has a connection cap; one that listens on nothing has none
            assert (receiver.max_connections() > 0) == bool(receiver.listening())
        finally:
            await receiver.stop()
        assert receiver.report().status == "stopped"


def _config_using(factory: AnyFactory, signal: Signal) -> str:
    """A config whose one pipeline, of ``signal``, uses the component."""
    cid = f"{factory.type_name}/x"
    doc: dict[str, Any] = {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "127.0.0.1:0"}}}},
        "exporters": {"file": {"path": "out.jsonl"}},
    }
    pipeline: dict[str, Any] = {"receivers": ["otlp"], "exporters": ["file"]}
    section = SECTIONS[factory.kind]
    doc.setdefault(section, {})[cid] = dict(factory.example) or None
    pipeline[section] = [cid]
    doc["service"] = {"pipelines": {signal.value: pipeline}}
    return yaml.safe_dump(doc)


REFUSED = [(f, s) for f in FACTORIES for s in Signal if s not in f.signals]


@pytest.mark.parametrize(
    ("factory", "signal"), REFUSED, ids=[f"{_id(f)}-{s.value}" for f, s in REFUSED]
)
def test_a_pipeline_of_a_signal_it_does_not_take_is_refused_with_its_path(
    factory: AnyFactory, signal: Signal
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_config_using(factory, signal), environ={})
    section = SECTIONS[factory.kind]
    takes = " and ".join(s.value for s in Signal if s in factory.signals)
    assert [(i.path, i.message) for i in info.value.errors] == [
        (
            f"service.pipelines.{signal.value}.{section}[0]",
            f"{factory.kind} '{factory.type_name}/x' takes only {takes}, not {signal.value}",
        )
    ]


@pytest.mark.parametrize("factory", FACTORIES, ids=_id)
def test_every_signal_it_takes_is_accepted(factory: AnyFactory) -> None:
    for signal in factory.signals:
        parse_config(_config_using(factory, signal), environ={})


def test_an_unknown_type_names_the_known_ones() -> None:
    with pytest.raises(UnknownComponentError) as info:
        REGISTRY.factory("exporter", "kafka")
    known = ", ".join(sorted(REGISTRY.types("exporter")))
    assert str(info.value) == f"unknown exporter type 'kafka' (known: {known})"


def test_a_type_registered_twice_is_refused() -> None:
    factory = REGISTRY.factory("exporter", "file")
    twin = ComponentFactory(
        kind="exporter",
        type_name="file",
        config=factory.config,
        signals=factory.signals,
        create=factory.create,
    )
    with pytest.raises(ValueError, match="exporter type 'file' is registered twice"):
        Registry([factory, twin])


def test_config_built_directly_takes_each_entry_as_its_registered_model() -> None:
    config = Config.model_validate(
        {
            "receivers": {"otlp": {"protocols": {"http": None}}},
            "exporters": {"loki/eu": {"endpoint": "http://loki:3100"}},
            "service": {"pipelines": {"logs": {"receivers": ["otlp"], "exporters": ["loki/eu"]}}},
        }
    )
    assert type(config.exporters["loki/eu"]) is REGISTRY.factory("exporter", "loki").config
    assert type(config.receivers["otlp"]) is REGISTRY.factory("receiver", "otlp").config


@pytest.mark.parametrize(
    ("component_id", "expected"),
    [("otlp", "otlp"), ("otlp/downstream", "otlp"), ("file/a/b", "file"), ("", "")],
)
def test_component_type(component_id: str, expected: str) -> None:
    assert component_type(component_id) == expected


def test_config_built_directly_with_an_unknown_type_is_a_validation_error() -> None:
    with pytest.raises(ValueError, match="unknown exporter type 'kafka'"):
        Config.model_validate(
            {
                "exporters": {"kafka": {}},
                "service": {"pipelines": {"logs": {"receivers": ["x"], "exporters": ["kafka"]}}},
            }
        )
