"""Components by kind and type: the OpenTelemetry Collector's factory model, in Python.

Each component module declares one :class:`ComponentFactory`: its type name (the key used in
the YAML, ``otlp`` in ``exporters.otlp/backup``), its pydantic config model, the signals it
supports and a ``create`` function. :mod:`gateway.components` lists every factory in one
:class:`Registry`; configuration validation and the running gateway look components up there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel

from exporters.base import Exporter
from gateway.health.system import SystemSampler
from gateway.listeners.http_guard import ConnectionGuard
from gateway.listeners.settings import HttpListenerSettings
from gateway.observers import Observer
from gateway.otlp.batch import Signal
from gateway.pipeline import Emit, Router
from gateway.processors import Processor
from gateway.receivers.admission import Admission
from gateway.security.auth import Authenticator
from gateway.selfmetrics import GatewayMetrics
from gateway.store.config import StoreConfig

Kind = Literal["receiver", "processor", "exporter"]
SECTIONS: dict[Kind, str] = {
    "receiver": "receivers",
    "processor": "processors",
    "exporter": "exporters",
}
ALL_SIGNALS = frozenset(Signal)

ConfigT = TypeVar("ConfigT", bound=BaseModel)
ComponentT = TypeVar("ComponentT")


def component_type(component_id: str) -> str:
    """The type part of ``type`` or ``type/name``."""
    return component_id.partition("/")[0]


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    """What ``/health`` says about one receiver."""

    status: Literal["ok", "failed", "stopped"]
    endpoints: list[str] = field(default_factory=list)
    last_error: str | None = None
    last_run_at: float | None = None  # wall clock, seconds


class Receiver(Protocol):
    """A source of batches: listens (OTLP) or produces them itself (host metrics)."""

    name: str

    def bind(self) -> None:
        """Take the listening sockets, before anything starts (a port in use fails early)."""

    async def start(self) -> None:
        """Start accepting or producing data."""

    async def stop(self) -> None:
        """Stop; what was accepted is already in the pipelines."""

    def max_connections(self) -> int:
        """How many connections the receiver may hold open at once (0: it listens on none)."""
        ...

    def listening(self) -> list[str]:
        """What it listens on, for the startup log line (``OTLP/gRPC on 0.0.0.0:4317``)."""
        ...

    def report(self) -> ReceiverReport:
        """Its state for ``/health``."""
        ...


@dataclass(frozen=True)
class Host:
    """What the gateway hands a component it creates (the Collector's ``component.Host`` and
    telemetry settings): its own metrics, where produced data goes, shared services."""

    metrics: GatewayMetrics
    #: Feed a batch the component produced (span metrics, host metrics) into the pipelines.
    emit: Emit
    #: For receivers: the routers of the pipelines that list the receiver id, per signal.
    routes: Callable[[str], dict[Signal, Router]] = lambda _: {}
    admission: Admission | None = None
    observers: Sequence[Observer] = ()
    sampler: SystemSampler | None = None
    #: A connection guard for an HTTP listener: (listener name, its settings).
    guard: Callable[[str, HttpListenerSettings], ConnectionGuard] | None = None
    #: The ``store:`` section, for the components that write into the embedded store.
    store: StoreConfig | None = None
    #: The error groups seen in a trace (blocking), for the store's trace view.
    errors_in_trace: Callable[[str], list[str]] | None = None
    #: Who may send: bearer tokens and client certificates (the ``auth:`` section).
    auth: Authenticator | None = None
    #: Listen with SO_REUSEPORT: worker processes share the OTLP ports (gateway.workers).
    reuse_port: bool = False


@dataclass(frozen=True)
class ComponentFactory(Generic[ConfigT, ComponentT]):
    """How to make one component type.

    ``example`` is a minimal valid config (for the lifecycle tests and the docs); ``create``
    gets the component id (``type`` or ``type/name``), the validated config and the host.
    """

    kind: Kind
    type_name: str
    config: type[ConfigT]
    signals: frozenset[Signal]
    create: Callable[[str, ConfigT, Host], ComponentT]
    example: Mapping[str, Any] = field(default_factory=dict)

    def takes(self, signal: Signal) -> bool:
        """Whether a pipeline of ``signal`` may use the component."""
        return signal in self.signals


AnyFactory = ComponentFactory[Any, Any]


class UnknownComponentError(KeyError):
    """No factory for a type; ``str()`` names the known types."""

    def __init__(self, kind: Kind, type_: str, known: Iterable[str]) -> None:
        self.message = f"unknown {kind} type '{type_}' (known: {', '.join(sorted(known))})"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class Registry:
    """``kind -> type -> factory``."""

    def __init__(self, factories: Iterable[AnyFactory]) -> None:
        self._by_kind: dict[Kind, dict[str, AnyFactory]] = {k: {} for k in SECTIONS}
        for factory in factories:
            types = self._by_kind[factory.kind]
            if factory.type_name in types:
                raise ValueError(f"{factory.kind} type '{factory.type_name}' is registered twice")
            types[factory.type_name] = factory

    def types(self, kind: Kind) -> Mapping[str, AnyFactory]:
        """Every factory of ``kind`` by type name."""
        return self._by_kind[kind]

    def factory(self, kind: Kind, type_: str) -> AnyFactory:
        """The factory of a type, or :class:`UnknownComponentError`."""
        found = self._by_kind[kind].get(type_)
        if found is None:
            raise UnknownComponentError(kind, type_, self._by_kind[kind])
        return found

    def receiver(self, component_id: str, config: BaseModel, host: Host) -> Receiver:
        """Create the receiver ``component_id`` (``type[/name]``)."""
        receiver: Receiver = self.factory("receiver", component_type(component_id)).create(
            component_id, config, host
        )
        return receiver

    def processor(self, component_id: str, config: BaseModel, host: Host) -> Processor:
        """Create the processor ``component_id``."""
        processor: Processor = self.factory("processor", component_type(component_id)).create(
            component_id, config, host
        )
        return processor

    def exporter(self, component_id: str, config: BaseModel, host: Host) -> Exporter:
        """Create the exporter ``component_id`` (without its queue)."""
        exporter: Exporter = self.factory("exporter", component_type(component_id)).create(
            component_id, config, host
        )
        return exporter
