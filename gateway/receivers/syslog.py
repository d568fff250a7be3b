"""The ``syslog`` receiver: RFC 5424 and RFC 3164 messages over UDP and TCP (or TLS) as OTLP log
records, for senders that speak only syslog (rsyslog, syslog-ng, ``logger``, network gear).

Each message is parsed (:mod:`gateway.receivers.syslog_parse`), mapped to a log record and its
resource attributes (:mod:`gateway.receivers.syslog_mapping`), gathered per resource into
``ExportLogsServiceRequest`` batches and handed to the logs pipelines that list the receiver
through the OTLP ingest path (:mod:`gateway.receivers.syslog_batch`). Framing is
:mod:`gateway.receivers.syslog_framing`; sockets and connection limits are
:mod:`gateway.receivers.syslog_listeners`.

Nothing is lost silently. A message that does not parse is delivered whole with its parse error;
one longer than ``max_message_size`` is delivered cut, with ``syslog.truncated_bytes``; both are
counted. When the pipelines refuse, TCP connections stop reading (the senders' TCP windows
fill) and resume once they accept; UDP datagrams that find no room are dropped and counted in
``otelgate_receiver_refused_items_total{signal="logs",transport="syslog/udp"}`` with the
refusal's reason, with a warning at most once a minute. Every message received (counted in
``otelgate_syslog_messages_total`` when framed) ends up accepted or refused, once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from datetime import UTC, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import Field, field_validator, model_validator

from gateway.config.values import Duration, ListenEndpoint, Size, StrictModel
from gateway.otlp.batch import Signal
from gateway.receivers.ingest import Ingest
from gateway.receivers.syslog_batch import BatchLimits, LogBatcher
from gateway.receivers.syslog_framing import Frame, Framing, datagram_frame
from gateway.receivers.syslog_listeners import TcpLimits, TcpListener, UdpListener
from gateway.receivers.syslog_mapping import to_log_record
from gateway.receivers.syslog_parse import parse
from gateway.registry import ComponentFactory, Host, ReceiverReport
from gateway.security.tls import TlsSettings

log = logging.getLogger("otelgate.syslog")

KIB, MIB = 1024, 1024 * 1024
TRUNCATED = "syslog.truncated_bytes"  # attribute: bytes cut off a message over max_message_size
STOP_GRACE = 2.0  # seconds stop() gives read messages and pending records to reach the pipelines
MIN_GRACE = 0.2  # seconds the batchers get at least, however long the connections took
WARN_EVERY = 60.0  # seconds between two warnings about dropped datagrams or parser failures
Transport = Literal["udp", "tcp"]

# Keys of the Collector's syslog receiver, and what to write here instead.
_COLLECTOR_KEYS = {
    "protocol": "remove it: each message's format (RFC 5424 or RFC 3164) is detected",
    "location": "use timezone",
    "enable_octet_counting": "use tcp.framing (auto detects octet counting)",
    "max_octets": "use max_message_size",
    "listen_address": "use endpoint",
}


def _no_collector_keys(data: Any) -> Any:
    if isinstance(data, dict):
        for key, hint in _COLLECTOR_KEYS.items():
            if key in data:
                raise ValueError(f"'{key}' is the Collector's key: {hint}")
    return data


class _Endpoint(ListenEndpoint):
    @model_validator(mode="before")
    @classmethod
    def _collector(cls, data: Any) -> Any:
        return _no_collector_keys(data)


class SyslogUdpConfig(_Endpoint):
    """The UDP listener (RFC 5426: one message per datagram)."""

    endpoint: str = "0.0.0.0:5514"


class SyslogTcpConfig(_Endpoint):
    """The TCP listener (RFC 6587 framing; TLS as in RFC 5425 with ``tls``)."""

    endpoint: str = "0.0.0.0:5514"
    framing: Framing = "auto"
    max_connections: int = Field(default=1024, gt=0)
    idle_timeout: Duration = Field(default=300.0, gt=0)
    read_timeout: Duration = Field(default=30.0, gt=0)
    tls: TlsSettings | None = None


class SyslogBatchConfig(StrictModel):
    """When gathered records are sent, and how many bytes of them may wait."""

    max_records: int = Field(default=512, gt=0)
    max_bytes: Size = Field(default=MIB, gt=0)
    timeout: Duration = Field(default=0.2, gt=0)
    max_pending_bytes: Size = Field(default=16 * MIB, gt=0)

    @model_validator(mode="after")
    def _pending_holds_a_batch(self) -> SyslogBatchConfig:
        if self.max_pending_bytes < self.max_bytes:
            raise ValueError("max_pending_bytes must be at least max_bytes")
        return self


class SyslogReceiverConfig(StrictModel):
    """The ``syslog`` receiver: UDP, TCP or both (a key given as null means its defaults)."""

    udp: SyslogUdpConfig | None = None
    tcp: SyslogTcpConfig | None = None
    max_message_size: Size = Field(default=64 * KIB, ge=480, le=16 * MIB)  # RFC 5424: >= 480
    timezone: str = "UTC"
    batch: SyslogBatchConfig = SyslogBatchConfig()

    @model_validator(mode="before")
    @classmethod
    def _null_means_defaults(cls, data: Any) -> Any:
        data = _no_collector_keys(data)
        if isinstance(data, dict):
            return {k: {} if v is None and k in ("udp", "tcp") else v for k, v in data.items()}
        return {} if data is None else data

    @model_validator(mode="after")
    def _at_least_one(self) -> SyslogReceiverConfig:
        if self.udp is None and self.tcp is None:
            raise ValueError("at least one of udp or tcp must be set")
        return self

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone_of(value)
        return value

    @property
    def tzinfo(self) -> tzinfo:
        """The zone of timestamps that carry none (RFC 3164)."""
        return zone_of(self.timezone)


def zone_of(name: str) -> tzinfo:
    """``UTC`` or an IANA zone name (``Europe/Paris``) as a tzinfo; ValueError if unknown."""
    try:
        return UTC if name == "UTC" else ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone '{name}' (use UTC or a name like Europe/Paris)"
        ) from None


_METRICS: weakref.WeakKeyDictionary[CollectorRegistry, SyslogMetrics] = weakref.WeakKeyDictionary()


class SyslogMetrics:
    """The syslog receivers' own counters, by receiver id and transport (``syslog/udp``,
    ``syslog/tcp``); made once per registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["receiver", "transport"]
        self.messages = Counter(
            "otelgate_syslog_messages",
            "Syslog messages received (UDP datagrams, TCP frames as framed), before parsing.",
            labels, registry=registry,
        )  # fmt: skip
        self.parse_errors = Counter(
            "otelgate_syslog_parse_errors",
            "Messages that were not valid RFC 5424 or RFC 3164; delivered whole as the body, "
            "with the parse error as an attribute.",
            labels, registry=registry,
        )  # fmt: skip
        self.truncated = Counter(
            "otelgate_syslog_truncated_messages",
            "Messages longer than max_message_size, delivered cut to it (syslog.truncated_bytes).",
            labels, registry=registry,
        )  # fmt: skip
        self.framing_errors = Counter(
            "otelgate_syslog_framing_errors",
            "TCP octet-counting headers that were not a length; the connection goes on with "
            "newline framing.",
            labels, registry=registry,
        )  # fmt: skip
        self.paused = Counter(
            "otelgate_syslog_paused_seconds",
            "Time TCP connections stopped reading because the logs pipelines refused records "
            "or max_pending_bytes was reached (summed over connections).",
            labels, registry=registry,
        )  # fmt: skip
        self.pending = Gauge(
            "otelgate_syslog_pending_bytes",
            "Bytes of log records gathered or being delivered, not yet taken by the pipelines.",
            labels, registry=registry,
        )  # fmt: skip

    @classmethod
    def of(cls, registry: CollectorRegistry) -> SyslogMetrics:
        found = _METRICS.get(registry)
        if found is None:
            found = _METRICS[registry] = cls(registry)
        return found


class SyslogInput:
    """One transport of a receiver: messages -> log records -> its batcher, counted."""

    def __init__(self, receiver: str, transport: Transport, ingest: Ingest,
                 config: SyslogReceiverConfig, metrics: SyslogMetrics) -> None:  # fmt: skip
        self.transport = transport
        self.ingest = ingest
        self.label = ingest.transport  # "syslog/udp"
        batch = config.batch
        limits = BatchLimits(batch.max_records, batch.max_bytes, batch.timeout,
                             batch.max_pending_bytes)  # fmt: skip
        self.batcher = LogBatcher(f"{receiver} ({transport})", ingest, limits)
        self.max_size = config.max_message_size
        self._tz = config.tzinfo
        self._receiver = receiver
        self._messages = metrics.messages.labels(receiver, self.label)
        self._parse_errors = metrics.parse_errors.labels(receiver, self.label)
        self._truncated = metrics.truncated.labels(receiver, self.label)
        self._framing_errors = metrics.framing_errors.labels(receiver, self.label)
        self._paused = metrics.paused.labels(receiver, self.label)
        pending = metrics.pending.labels(receiver, self.label)
        pending.set_function(lambda: self.batcher.pending_bytes)
        self._dropped: dict[str, int] = {}  # datagrams dropped since the last warning
        self._last_drop_warning = self._last_failure = -WARN_EVERY

    def convert(self, frame: Frame, peer: str | None) -> tuple[list[KeyValue], LogRecord] | None:
        """The resource attributes and log record of one message (None: the parser failed,
        counted as refused with reason ``parse_failure``)."""
        now = time.time_ns()
        try:
            message = parse(frame.data, now, tz=self._tz)
            resource, record = to_log_record(message, now, peer, self.transport)
        except Exception:  # a bug in the parser must not cost the connection or other messages
            self.ingest.refuse(Signal.LOGS, "parse_failure", 1)
            if time.monotonic() - self._last_failure >= WARN_EVERY:
                self._last_failure = time.monotonic()
                log.exception("receiver %s: cannot map a syslog message", self._receiver)
            return None
        if message.parse_error is not None:
            self._parse_errors.inc()
        if frame.cut:
            self._truncated.inc()
            record.attributes.append(KeyValue(key=TRUNCATED, value=AnyValue(int_value=frame.cut)))
        return resource, record

    def datagram(self, data: bytes, peer: str | None) -> None:
        """One UDP datagram: batched, or dropped and counted when there is no room."""
        frame = datagram_frame(data, self.max_size)
        if frame is None:
            return
        self._messages.inc()
        converted = self.convert(frame, peer)
        if converted is None:
            return
        reason = self.batcher.add(*converted)
        if reason is not None:
            self.ingest.refuse(Signal.LOGS, reason, 1)
            self._dropped[reason] = self._dropped.get(reason, 0) + 1
            now = time.monotonic()
            if now - self._last_drop_warning >= WARN_EVERY:
                dropped = ", ".join(f"{n} ({why})" for why, n in self._dropped.items())
                log.warning("receiver %s: dropped UDP syslog messages: %s; the logs pipelines do "
                            "not keep up", self._receiver, dropped)  # fmt: skip
                self._last_drop_warning, self._dropped = now, {}

    def framed(self, messages: int) -> None:
        """Count TCP messages as they are framed (then taken, or counted lost)."""
        if messages:
            self._messages.inc(messages)

    async def take(self, frame: Frame, peer: str | None) -> None:
        """One TCP message: batched, waiting (not reading) while there is no room; once the
        batcher stopped it is counted lost (``not_ready``) rather than waited for."""
        converted = self.convert(frame, peer)
        if converted is None or self.batcher.add(*converted) is None:
            return
        started = time.monotonic()
        try:
            while not self.batcher.stopping:
                await self.batcher.wait_room()
                if self.batcher.add(*converted) is None:
                    return
            self.lost(1, "not_ready")
        finally:
            self._paused.inc(time.monotonic() - started)

    def lost(self, messages: int, reason: str) -> None:
        """Count messages read from a connection but never batched (the receiver stopped)."""
        self.ingest.refuse(Signal.LOGS, reason, messages)

    def framing_error(self) -> None:
        self._framing_errors.inc()


class SyslogReceiver:
    """One ``syslog`` receiver: its UDP listener, its TCP listener, or both."""

    def __init__(self, name: str, config: SyslogReceiverConfig, host: Host) -> None:
        self.name = name
        self.config = config
        self.udp: UdpListener | None = None
        self.tcp: TcpListener | None = None
        self.inputs: list[SyslogInput] = []
        self._running = False
        routers = host.routes(name)
        metrics = SyslogMetrics.of(host.metrics.registry)

        def input_for(transport: Transport) -> SyslogInput:
            ingest = Ingest(f"syslog/{transport}", routers, host.metrics, host.observers,
                            host.admission)  # fmt: skip
            found = SyslogInput(name, transport, ingest, config, metrics)
            self.inputs.append(found)
            return found

        if config.udp is not None:
            udp = input_for("udp")
            self.udp = UdpListener(config.udp.endpoint, udp.datagram, host.reuse_port)
        if config.tcp is not None:
            tcp_config = config.tcp
            limits = TcpLimits(tcp_config.max_connections, tcp_config.idle_timeout,
                               tcp_config.read_timeout, tcp_config.framing,
                               config.max_message_size)  # fmt: skip
            self.tcp = TcpListener(
                f"{name}/tcp", tcp_config.endpoint, limits, input_for("tcp"),
                host.metrics.connections, tls=tcp_config.tls, reuse_port=host.reuse_port,
            )  # fmt: skip

    def bind(self) -> None:
        """Take both ports now (a port in use fails before anything starts)."""
        if self.udp is not None:
            self.udp.bind()
        if self.tcp is not None:
            self.tcp.bind()

    async def start(self) -> None:
        """Start the batchers, then listen."""
        for found in self.inputs:
            await found.batcher.start()
        if self.udp is not None:
            await self.udp.start()
        if self.tcp is not None:
            await self.tcp.start()
        self._running = True

    async def stop(self) -> None:
        """Stop listening and reading; within ``STOP_GRACE`` (2 s) the connections frame and
        hand over what they already read, then what is pending goes to the pipelines. What
        cannot be handed over or delivered in time is counted as refused, with its reason."""
        self._running = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_GRACE
        if self.udp is not None:
            await self.udp.stop()
        if self.tcp is not None:
            await self.tcp.finish(STOP_GRACE)
        grace = max(MIN_GRACE, deadline - loop.time())
        await asyncio.gather(*(found.batcher.stop(grace) for found in self.inputs))
        if self.tcp is not None:  # connections still waiting for room give up now
            await self.tcp.stop()

    def max_connections(self) -> int:
        """The TCP connection cap, plus the UDP socket."""
        tcp = self.config.tcp.max_connections if self.config.tcp is not None else 0
        return tcp + (1 if self.config.udp is not None else 0)

    def listening(self) -> list[str]:
        """E.g. ``syslog/udp on 0.0.0.0:5514`` (the bound port when the endpoint says 0)."""
        found = [f"{self.name}/udp on {self.udp.address}"] if self.udp is not None else []
        if self.tcp is not None:
            tls = "+tls" if self.tcp.tls is not None else ""
            found.append(f"{self.name}/tcp{tls} on {self.tcp.address}")
        return found

    def report(self) -> ReceiverReport:
        """Running or stopped, with the endpoints; ``last_error`` says while the pipelines
        refuse records."""
        endpoints = [f"udp {self.udp.address}"] if self.udp is not None else []
        if self.tcp is not None:
            endpoints.append(f"tcp {self.tcp.address}")
        blocked = [f"{i.transport}: the logs pipelines refuse records ({i.batcher.blocked})"
                   for i in self.inputs if i.batcher.blocked is not None]  # fmt: skip
        error = "; ".join(blocked) or None
        return ReceiverReport("ok" if self._running else "stopped", endpoints, error)


FACTORY = ComponentFactory(
    kind="receiver",
    type_name="syslog",
    config=SyslogReceiverConfig,
    signals=frozenset({Signal.LOGS}),
    create=SyslogReceiver,
    example={"udp": {"endpoint": "127.0.0.1:0"}, "tcp": {"endpoint": "127.0.0.1:0"}},
)
