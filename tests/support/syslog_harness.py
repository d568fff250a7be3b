"""A ``syslog`` receiver on real sockets (127.0.0.1, port 0) for the receiver tests, fed into a
look-alike :class:`Pipeline` that records batches and, when told to, refuses them the way a full
exporter queue does (``BackpressureError`` from ``check_room``), or the way a queue's ``put``
does when a spool cannot write (``SpoolWriteError`` from ``consume``)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from prometheus_client import CollectorRegistry

from exporters.spool import SpoolWriteError
from gateway.components import REGISTRY
from gateway.errors import BackpressureError
from gateway.otlp.batch import Batch, Signal
from gateway.pipeline import Router
from gateway.receivers.syslog import SyslogReceiver, SyslogReceiverConfig
from gateway.registry import Host
from gateway.selfmetrics import GatewayMetrics

LOGGER = shutil.which("logger") or "/usr/bin/logger"


class Pipeline:
    """A logs pipeline that records what it takes and refuses while ``refusing``."""

    name = "logs"
    mutates = False

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self.refusing = False
        self.refusals = 0
        self.broken = False  # the next consume raises
        self.failing = 0  # the next consumes refuse, as a queue whose spool cannot write does

    def check_room(self, items: int, nbytes: int) -> None:
        if self.refusing:
            self.refusals += 1
            raise BackpressureError("exporter queue full", retry_after=0.05)

    async def consume(self, batch: Batch) -> None:
        if self.broken:
            self.broken = False
            raise RuntimeError("a processor bug")
        if self.failing:
            self.failing -= 1
            raise SpoolWriteError("exporter spool: cannot write: disk full")
        self.batches.append(batch)

    def records(self) -> list[tuple[dict[str, Any], LogRecord]]:
        """(resource attributes, record) of every record taken, in order."""
        found = []
        for batch in self.batches:
            for rl in batch.request.resource_logs:  # type: ignore[union-attr]
                resource = {kv.key: _value(kv.value) for kv in rl.resource.attributes}
                found += [(resource, r) for sl in rl.scope_logs for r in sl.log_records]
        return found

    def bodies(self) -> list[str]:
        return [r.body.string_value for _, r in self.records()]


def _value(value: Any) -> Any:
    return getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None


def attributes(record: LogRecord) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in record.attributes}


class Harness:
    def __init__(self, receiver: SyslogReceiver, pipeline: Pipeline, registry: Any) -> None:
        self.receiver = receiver
        self.pipeline = pipeline
        self.registry = registry

    @property
    def udp_port(self) -> int:
        assert self.receiver.udp is not None
        return int(self.receiver.udp.address.rpartition(":")[2])

    @property
    def tcp_port(self) -> int:
        assert self.receiver.tcp is not None
        return int(self.receiver.tcp.address.rpartition(":")[2])

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def syslog(self, name: str, transport: str) -> float:
        return self.sample(f"otelgate_syslog_{name}", receiver="syslog", transport=transport)

    def accepted(self, transport: str) -> float:
        return self.sample(
            "otelgate_receiver_accepted_items_total", signal="logs", transport=transport
        )

    def refused(self, transport: str, reason: str) -> float:
        return self.sample(
            "otelgate_receiver_refused_items_total",
            signal="logs", transport=transport, reason=reason,
        )  # fmt: skip

    def send_udp(self, *messages: bytes) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for message in messages:
                sock.sendto(message, ("127.0.0.1", self.udp_port))

    async def connect(
        self, context: ssl.SSLContext | None = None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.tcp_port, ssl=context)

    async def send_tcp(self, *chunks: bytes, pause: float = 0.0) -> None:
        _, writer = await self.connect()
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            if pause:
                await asyncio.sleep(pause)
        writer.close()
        await writer.wait_closed()


@asynccontextmanager
async def running(**config: Any) -> AsyncIterator[Harness]:
    """A syslog receiver (UDP and TCP on 127.0.0.1:0 unless ``config`` says) feeding one
    recording logs pipeline."""
    config.setdefault("udp", {"endpoint": "127.0.0.1:0"})
    config.setdefault("tcp", {"endpoint": "127.0.0.1:0"})
    config = {k: v for k, v in config.items() if v is not False}
    config.setdefault("batch", {"timeout": "20ms"})
    registry = CollectorRegistry()
    pipeline = Pipeline()
    host = Host(
        metrics=GatewayMetrics(registry),
        emit=nowhere,
        routes=lambda _: {Signal.LOGS: Router(Signal.LOGS, [pipeline])},
    )
    receiver = REGISTRY.receiver("syslog", SyslogReceiverConfig.model_validate(config), host)
    assert isinstance(receiver, SyslogReceiver)
    receiver.bind()
    await receiver.start()
    try:
        yield Harness(receiver, pipeline, registry)
    finally:
        await receiver.stop()


async def nowhere(batch: Batch, source: str | None) -> bool:
    """An emit that takes nothing."""
    return False


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


RFC5424 = b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 42 ID47 [exampleSDID@32473 iut="3"] An application event'  # noqa: E501
RFC3164 = b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8"
