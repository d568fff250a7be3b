"""The ``syslog`` receiver on real sockets (127.0.0.1, port 0): UDP, TCP with both framings,
TLS, limits, backpressure, and util-linux ``logger`` as a real sender.

The pipelines are a look-alike :class:`Pipeline` that records batches and, when told to,
refuses them the way a full exporter queue does (``BackpressureError`` from ``check_room``), or
the way a queue's ``put`` does when a spool cannot write (``SpoolWriteError`` from ``consume``).
What ``logger`` sends was checked against util-linux 2.38: ``--udp`` sends one message per
datagram without a newline; ``--tcp`` ends each message with LF; ``--octet-count`` prefixes
the length (RFC 6587).
"""

from __future__ import annotations

import asyncio
import codecs
import itertools
import shutil
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from prometheus_client import CollectorRegistry

from exporters.spool import SpoolWriteError
from gateway.components import REGISTRY
from gateway.errors import BackpressureError
from gateway.otlp.batch import Batch, Signal
from gateway.pipeline import Router
from gateway.receivers.syslog import SyslogReceiver, SyslogReceiverConfig
from gateway.receivers.syslog_framing import Frame, Framer, datagram_frame
from gateway.registry import Host
from gateway.selfmetrics import GatewayMetrics
from tests.support.certs import TestCa
from tests.support.ports import free_port
from tests.support.tls_clients import client_context

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
        emit=_nowhere,
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


async def _nowhere(batch: Batch, source: str | None) -> bool:
    return False


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


RFC5424 = b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 42 ID47 [exampleSDID@32473 iut="3"] An application event'  # noqa: E501
RFC3164 = b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8"


# --- framing (pure) ---------------------------------------------------------------------------


def test_newline_framing_cuts_lines_across_chunks_and_keeps_the_last_at_the_end() -> None:
    framer = Framer("newline", 1024)
    assert framer.feed(b"<1>a\n<2>b\r\n\n<3>c") == [Frame(b"<1>a"), Frame(b"<2>b")]
    assert framer.partial
    assert framer.feed(b"d\r") == []
    assert framer.feed(b"\n<4>e") == [Frame(b"<3>cd")]
    assert framer.end() == [Frame(b"<4>e")]
    assert not framer.partial


def test_octet_counting_with_headers_and_bodies_split_anywhere() -> None:
    framer = Framer("octet_counting", 1024)
    stream = b"5 <1>ab12 <2>hello you7 <3>last"
    frames = [f for i in range(len(stream)) for f in framer.feed(stream[i : i + 1])]
    assert frames == [Frame(b"<1>ab"), Frame(b"<2>hello you"), Frame(b"<3>last")]
    assert not framer.partial


@settings(max_examples=300, deadline=None)
@given(
    messages=st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=10),
    octets=st.booleans(),
)
def test_any_stream_cut_anywhere_gives_back_its_messages(
    messages: list[bytes], cuts: list[int], octets: bool
) -> None:
    trailer, size = b"\r\n\x00", 16
    expected = []
    if octets:
        stream = b"".join(b"%d %s" % (len(m), m) for m in messages)
        for m in messages:
            expected.append(_utf8_cut(m[:size].rstrip(trailer), max(0, len(m) - size)))
    else:  # LF and NUL both end a line
        lines = [m.replace(b"\n", b" ").replace(b"\x00", b" ") for m in messages]
        stream = b"".join(line + b"\n" for line in lines)
        for line in lines:
            length = len(line) - line.endswith(b"\r")  # CR LF: the CR is framing
            data = line[: min(size, length)].rstrip(trailer)
            expected.append(_utf8_cut(data, max(0, length - size)))
    framer = Framer("octet_counting" if octets else "newline", size)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    frames = [f for a, b in itertools.pairwise(points) for f in framer.feed(stream[a:b])]
    frames += framer.end()
    assert [(f.data, f.cut) for f in frames] == [e for e in expected if e[0] or e[1]]
    assert not framer.partial


def _utf8_cut(data: bytes, cut: int) -> tuple[bytes, int]:
    """A cut message backs off an incomplete UTF-8 character at its end (the model)."""
    if not cut:
        return data, cut
    decoder = codecs.getincrementaldecoder("utf-8")("ignore")
    decoder.decode(data, final=False)
    back = len(decoder.getstate()[0])
    return data[: len(data) - back], cut + back


def test_auto_framing_is_decided_by_the_first_byte() -> None:
    assert Framer("auto", 64).feed(b"4 <1>a4 <1>b") == [Frame(b"<1>a"), Frame(b"<1>b")]
    assert Framer("auto", 64).feed(b"<1>4 a\n") == [Frame(b"<1>4 a")]


@pytest.mark.parametrize("garbage", [b"xx <1>not counted\n", b"0 <1>zero\n", b"12345678901 \n"])
def test_a_bad_octet_count_is_a_framing_error_and_the_rest_arrives_as_lines(
    garbage: bytes,
) -> None:
    errors: list[int] = []
    framer = Framer("octet_counting", 64, lambda: errors.append(1))
    frames = framer.feed(b"4 <1>a" + garbage + b"<2>b\n")
    assert frames == [Frame(b"<1>a"), Frame(garbage.rstrip(b"\n")), Frame(b"<2>b")]
    assert errors == [1]
    assert framer.mode == "newline"


def test_long_messages_are_cut_and_marked_with_the_bytes_cut_off() -> None:
    lines = Framer("newline", 8)
    assert lines.feed(b"0123456789") == []
    assert lines.feed(b"abc\r\nxy\n") == [Frame(b"01234567", cut=5), Frame(b"xy")]
    octets = Framer("octet_counting", 8)
    assert octets.feed(b"12 0123456789ab3 xyz") == [Frame(b"01234567", cut=4), Frame(b"xyz")]


def test_an_incomplete_message_at_the_end_is_kept_and_marked() -> None:
    framer = Framer("octet_counting", 64)
    assert framer.feed(b"10 <1>ab") == []
    assert framer.end() == [Frame(b"<1>ab", cut=5)]
    assert datagram_frame(b"<1>x\n\x00", 64) == Frame(b"<1>x")
    assert datagram_frame(b"0123456789", 4) == Frame(b"0123", cut=6)
    assert datagram_frame(b"\n", 4) is None


# --- config -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "at least one of udp or tcp must be set"),
        ({"udp": None, "protocol": "rfc5424"}, "'protocol' is the Collector's key"),
        ({"udp": {"listen_address": "0.0.0.0:514"}}, "'listen_address' is the Collector's key"),
        ({"udp": None, "timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"tcp": {"framing": "stuffed"}}, "Input should be 'auto', 'octet_counting'"),
        ({"udp": None, "batch": {"max_bytes": "1MiB", "max_pending_bytes": "512KiB"}},
         "max_pending_bytes must be at least max_bytes"),
    ],
)  # fmt: skip
def test_config_errors_say_what_to_write(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SyslogReceiverConfig.model_validate(config)


def test_config_defaults_and_units() -> None:
    config = SyslogReceiverConfig.model_validate(
        {"udp": None, "tcp": {"idle_timeout": "2m"}, "max_message_size": "8KiB"}
    )
    assert config.udp is not None and config.udp.endpoint == "0.0.0.0:5514"
    assert config.tcp is not None and config.tcp.endpoint == "0.0.0.0:5514"
    assert (config.tcp.framing, config.tcp.idle_timeout, config.tcp.max_connections) == (
        "auto", 120.0, 1024,
    )  # fmt: skip
    assert config.max_message_size == 8192
    assert (config.batch.max_records, config.batch.timeout) == (512, 0.2)


# --- UDP and TCP ------------------------------------------------------------------------------


async def test_udp_datagrams_become_log_records_with_their_fields() -> None:
    async with running(tcp=False) as h:
        h.send_udp(RFC5424, RFC3164, b"no syslog at all")
        await eventually(lambda: len(h.pipeline.records()) == 3)
        (res1, rec1), (res2, rec2), (_, rec3) = h.pipeline.records()
        assert res1 == {"host.name": "mymachine.example.com", "service.name": "evntslog"}
        assert rec1.body.string_value == "An application event"
        assert (rec1.severity_number, rec1.severity_text) == (10, "notice")
        assert rec1.time_unix_nano == 1065910455003000000
        attrs = attributes(rec1)
        assert attrs["syslog.facility"] == 20
        assert attrs["syslog.procid"] == "42" and attrs["syslog.msgid"] == "ID47"
        assert attrs["network.transport"] == "udp"
        assert attrs["network.peer.address"] == "127.0.0.1"
        assert res2 == {"host.name": "mymachine", "service.name": "su"}
        assert rec2.body.string_value == "'su root' failed for lonvick on /dev/pts/8"
        assert rec3.body.string_value == "no syslog at all"
        assert "syslog.parse_error" in attributes(rec3)
        assert h.accepted("syslog/udp") == 3
        assert h.syslog("messages_total", "syslog/udp") == 3
        assert h.syslog("parse_errors_total", "syslog/udp") == 1


async def test_records_are_grouped_per_resource_into_one_request() -> None:
    async with running(tcp=False, batch={"timeout": "200ms"}) as h:
        h.send_udp(b"<14>Oct 11 22:14:15 a x: 1", b"<14>Oct 11 22:14:15 b x: 2",
                   b"<14>Oct 11 22:14:15 a x: 3")  # fmt: skip
        await eventually(lambda: len(h.pipeline.records()) == 3)
        assert len(h.pipeline.batches) == 1
        request = h.pipeline.batches[0].request
        hosts = [
            [r.body.string_value for sl in rl.scope_logs for r in sl.log_records]
            for rl in request.resource_logs  # type: ignore[union-attr]
        ]
        assert hosts == [["1", "3"], ["2"]]


async def test_tcp_newline_framing_with_several_messages_per_write() -> None:
    async with running(udp=False) as h:
        await h.send_tcp(b"<13>1 - h app - - - one\n<13>1 - h app - - - two\r\n<13>Oct 11 "
                         b"22:14:15 h app: three")  # fmt: skip
        await eventually(lambda: len(h.pipeline.records()) == 3)
        assert h.pipeline.bodies() == ["one", "two", "three"]
        assert attributes(h.pipeline.records()[0][1])["network.transport"] == "tcp"
        assert h.accepted("syslog/tcp") == 3


async def test_tcp_octet_counting_and_a_message_split_across_reads() -> None:
    first = b"<13>1 - h app - - - with\nnewline inside"
    second = b"<13>1 - h app - - - second"
    stream = b"%d %s%d %s" % (len(first), first, len(second), second)
    async with running(udp=False) as h:
        # header split, body split, the next header split from its body: 7 writes
        cuts = [1, 3, 20, len(first) + 3, len(first) + 5, len(first) + 9, len(stream)]
        chunks = [stream[a:b] for a, b in zip([0, *cuts], cuts, strict=False)]
        await h.send_tcp(*chunks, pause=0.05)
        await eventually(lambda: len(h.pipeline.records()) == 2)
        assert h.pipeline.bodies() == ["with\nnewline inside", "second"]
        assert h.syslog("framing_errors_total", "syslog/tcp") == 0


async def test_oversize_messages_are_truncated_marked_and_counted_not_dropped() -> None:
    async with running(max_message_size=480) as h:
        big = b"<13>1 - h app - - - " + b"x" * 2000
        await h.send_tcp(big + b"\n<13>1 - h app - - - after\n")
        h.send_udp(big)
        await eventually(lambda: len(h.pipeline.records()) == 3)
        tcp = [r for _, r in h.pipeline.records() if attributes(r)["network.transport"] == "tcp"]
        (_, udp) = next(x for x in h.pipeline.records() if x[1] not in tcp)
        for record in (tcp[0], udp):
            assert record.body.string_value == "x" * (480 - 20)
            assert attributes(record)["syslog.truncated_bytes"] == len(big) - 480
        assert tcp[1].body.string_value == "after"
        assert "syslog.truncated_bytes" not in attributes(tcp[1])
        assert h.syslog("truncated_messages_total", "syslog/tcp") == 1
        assert h.syslog("truncated_messages_total", "syslog/udp") == 1


async def test_connections_over_max_connections_are_closed_and_counted() -> None:
    async with running(udp=False, tcp={"endpoint": "127.0.0.1:0", "max_connections": 2}) as h:
        held = [await h.connect() for _ in range(2)]
        for i, (_, writer) in enumerate(held):
            writer.write(b"<13>1 - h app - - - held %d\n" % i)
        await eventually(lambda: len(h.pipeline.records()) == 2)
        reader, writer = await h.connect()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the gateway
        writer.close()
        labels = {"listener": "syslog/tcp"}
        assert h.sample("otelgate_listener_connections_refused_total", **labels) == 1
        assert h.sample("otelgate_listener_connections", **labels) == 2
        assert h.sample("otelgate_listener_connections_limit", **labels) == 2
        held[0][1].close()
        await eventually(lambda: h.receiver.tcp is not None and h.receiver.tcp.connections == 1)
        await h.send_tcp(b"<13>1 - h app - - - later\n")
        await eventually(lambda: "later" in h.pipeline.bodies())
        held[1][1].close()


async def test_idle_and_stalled_connections_are_closed_and_a_partial_message_kept() -> None:
    tcp = {"endpoint": "127.0.0.1:0", "idle_timeout": "300ms", "read_timeout": "300ms"}
    async with running(udp=False, tcp=tcp) as h:
        idle_reader, idle = await h.connect()
        stalled_reader, stalled = await h.connect()
        stalled.write(b"<13>1 - h app - - - no newline yet")
        assert await asyncio.wait_for(idle_reader.read(), 5) == b""
        assert await asyncio.wait_for(stalled_reader.read(), 5) == b""
        idle.close()
        stalled.close()
        await eventually(lambda: h.pipeline.bodies() == ["no newline yet"])
        closed = "otelgate_listener_connections_closed_total"
        assert h.sample(closed, listener="syslog/tcp", reason="idle_timeout") == 1
        assert h.sample(closed, listener="syslog/tcp", reason="read_timeout") == 1


async def test_tls_with_octet_counting(tmp_path: Path) -> None:
    ca = TestCa(tmp_path)
    server = ca.server()
    tls = {"cert_file": str(server.cert_file), "key_file": str(server.key_file)}
    async with running(udp=False, tcp={"endpoint": "127.0.0.1:0", "tls": tls}) as h:
        assert h.receiver.listening() == [f"syslog/tcp+tls on 127.0.0.1:{h.tcp_port}"]
        _, writer = await h.connect(client_context([ca.ca_file]))
        for i in range(3):
            message = b"<13>1 - h app - - - secure %d\nline two" % i
            writer.write(b"%d %s" % (len(message), message))
        await writer.drain()
        await eventually(lambda: len(h.pipeline.records()) == 3)
        assert h.pipeline.bodies() == [f"secure {i}\nline two" for i in range(3)]
        writer.close()
        # a plaintext client gets no record through
        await h.send_tcp(b"<13>1 - h app - - - plain\n")
        await asyncio.sleep(0.2)
        assert len(h.pipeline.records()) == 3


# --- backpressure -----------------------------------------------------------------------------


async def test_tcp_stops_reading_while_refused_then_delivers_everything_in_order() -> None:
    batch = {"timeout": "20ms", "max_bytes": "32KiB", "max_pending_bytes": "64KiB"}
    async with running(udp=False, batch=batch) as h:
        h.pipeline.refusing = True
        _, writer = await h.connect()
        transport = writer.transport
        messages = 0
        loop = asyncio.get_running_loop()
        stuck_since = None
        while messages < 200_000:  # until the sender cannot write: its TCP window is closed
            if transport.get_write_buffer_size() < 1024 * 1024:
                chunk = b"".join(
                    b"<13>1 - h app - - - m%06d %s\n" % (messages + i, b"x" * 1000)
                    for i in range(64)
                )
                writer.write(chunk)
                messages += 64
                stuck_since = None
            elif stuck_since is None:
                stuck_since = loop.time()
            elif loop.time() - stuck_since > 1.0:
                break
            await asyncio.sleep(0.001)
        assert messages < 200_000, "the receiver kept reading while the pipelines refused"
        assert h.pipeline.records() == []
        assert h.receiver.inputs[0].batcher.pending_bytes <= 64 * 1024 + 2048
        report = h.receiver.report()
        assert report.status == "ok"
        assert report.last_error == "tcp: the logs pipelines refuse records (backpressure)"
        h.pipeline.refusing = False
        await writer.drain()
        writer.close()
        await eventually(lambda: len(h.pipeline.records()) == messages, timeout=60)
        bodies = h.pipeline.bodies()
        assert [b[:7] for b in bodies] == [f"m{i:06d}" for i in range(messages)]
        assert max(b.nbytes for b in h.pipeline.batches) <= 32 * 1024 + 1100  # max_bytes
        assert h.accepted("syslog/tcp") == messages
        assert h.refused("syslog/tcp", "backpressure") == 0
        assert h.syslog("paused_seconds_total", "syslog/tcp") > 0.5


async def test_udp_drops_what_finds_no_room_and_counts_it_with_the_reason() -> None:
    batch = {"timeout": "20ms", "max_bytes": "2KiB", "max_pending_bytes": "4KiB"}
    async with running(tcp=False, batch=batch) as h:
        h.pipeline.refusing = True
        sent = 200
        for i in range(sent):
            h.send_udp(b"<13>1 - h app - - - d%03d %s" % (i, b"y" * 100))
            if i % 20 == 0:
                await asyncio.sleep(0.01)
        await eventually(lambda: h.syslog("messages_total", "syslog/udp") == sent)
        dropped = h.refused("syslog/udp", "backpressure")
        assert 0 < dropped < sent
        h.pipeline.refusing = False
        await eventually(lambda: len(h.pipeline.records()) == sent - dropped)
        assert h.accepted("syslog/udp") == sent - dropped
        assert h.sample("otelgate_syslog_pending_bytes", receiver="syslog",
                        transport="syslog/udp") == 0  # fmt: skip


async def test_stop_delivers_what_is_pending_and_counts_what_is_still_refused() -> None:
    async with running(tcp=False, batch={"timeout": "1h"}) as h:
        h.send_udp(b"<13>1 - h app - - - pending")
        await eventually(lambda: h.syslog("messages_total", "syslog/udp") == 1)
        await h.receiver.stop()
        assert h.pipeline.bodies() == ["pending"]
        assert h.receiver.report().status == "stopped"
    async with running(tcp=False, batch={"timeout": "1h"}) as h:
        h.pipeline.refusing = True
        h.send_udp(b"<13>1 - h app - - - refused")
        await eventually(lambda: h.syslog("messages_total", "syslog/udp") == 1)
        await h.receiver.stop()
        assert h.pipeline.records() == []
        assert h.refused("syslog/udp", "backpressure") == 1


async def test_stopping_while_tcp_waits_for_room_counts_every_message_read() -> None:
    batch = {"timeout": "20ms", "max_bytes": 600, "max_pending_bytes": 600}
    async with running(udp=False, batch=batch) as h:
        h.pipeline.refusing = True
        message = b"<13>1 - h app - - - %s\n" % (b"z" * 250)
        await h.send_tcp(message * 5)
        await eventually(lambda: h.receiver.inputs[0].batcher.blocked is not None)
        await asyncio.sleep(0.1)  # the connection reads what was sent, up to the bound
        await h.receiver.stop()
        refused = h.refused("syslog/tcp", "backpressure") + h.refused("syslog/tcp", "not_ready")
        assert (refused, h.accepted("syslog/tcp")) == (5, 0)
        assert h.refused("syslog/tcp", "not_ready") > 0  # some were still in the connection


async def test_a_batch_that_fails_with_a_bug_is_counted_and_later_ones_still_go() -> None:
    async with running(tcp=False) as h:
        h.pipeline.broken = True
        h.send_udp(b"<13>1 - h app - - - lost to a bug")
        await eventually(lambda: h.refused("syslog/udp", "internal_error") == 1)
        h.send_udp(b"<13>1 - h app - - - fine")
        await eventually(lambda: h.pipeline.bodies() == ["fine"])
        assert h.receiver.report().last_error is None


async def test_without_a_logs_pipeline_records_are_refused_and_counted() -> None:
    registry = CollectorRegistry()
    host = Host(metrics=GatewayMetrics(registry), emit=_nowhere)
    config = SyslogReceiverConfig.model_validate({"udp": {"endpoint": "127.0.0.1:0"}})
    receiver = REGISTRY.receiver("syslog", config, host)
    receiver.bind()
    await receiver.start()
    try:
        assert isinstance(receiver, SyslogReceiver) and receiver.udp is not None
        port = int(receiver.udp.address.rpartition(":")[2])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"<13>1 - h app - - - nowhere", ("127.0.0.1", port))
        labels = {"signal": "logs", "transport": "syslog/udp", "reason": "no_pipeline"}
        name = "otelgate_receiver_refused_items_total"
        await eventually(lambda: registry.get_sample_value(name, labels) == 1)
    finally:
        await receiver.stop()


# --- a real sender: util-linux logger -----------------------------------------------------------


@pytest.mark.skipif(not Path(LOGGER).exists(), reason="util-linux logger is not installed")
@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize("rfc", ["rfc5424", "rfc3164"])
async def test_logger_messages_arrive_with_the_right_fields(transport: str, rfc: str) -> None:
    async with running() as h:
        port = h.udp_port if transport == "udp" else h.tcp_port
        process = await asyncio.create_subprocess_exec(
            LOGGER, "--server", "127.0.0.1", "--port", str(port), f"--{transport}", f"--{rfc}",
            "-t", "app", "-p", "local3.err", "hello from logger",
        )  # fmt: skip
        assert await asyncio.wait_for(process.wait(), 10) == 0
        await eventually(lambda: len(h.pipeline.records()) == 1)
        resource, record = h.pipeline.records()[0]
        assert record.body.string_value == "hello from logger"
        assert (record.severity_number, record.severity_text) == (17, "err")
        assert resource["service.name"] == "app"
        assert socket.gethostname().startswith(resource["host.name"])  # 3164: up to a dot
        attrs = attributes(record)
        assert attrs["syslog.facility"] == 19  # local3
        assert attrs["network.transport"] == transport
        assert "syslog.parse_error" not in attrs
        assert record.time_unix_nano > 0
        assert attrs.get("syslog.version") == (1 if rfc == "rfc5424" else None)
        assert h.accepted(f"syslog/{transport}") == 1


async def test_reuse_port_lets_worker_processes_share_both_ports() -> None:
    def receiver(endpoint: str, reuse_port: bool) -> SyslogReceiver:
        host = Host(metrics=GatewayMetrics(CollectorRegistry()), emit=_nowhere,
                    reuse_port=reuse_port)  # fmt: skip
        config = SyslogReceiverConfig.model_validate(
            {"udp": {"endpoint": endpoint}, "tcp": {"endpoint": endpoint}}
        )
        found = REGISTRY.receiver("syslog", config, host)
        assert isinstance(found, SyslogReceiver)
        return found

    endpoint = f"127.0.0.1:{free_port()}"  # UDP and TCP on one number
    first, second = receiver(endpoint, True), receiver(endpoint, True)
    try:
        first.bind()
        second.bind()  # both ports shared
        with pytest.raises(OSError, match=f"cannot listen on {endpoint} \\(udp\\)"):
            receiver(endpoint, reuse_port=False).bind()
    finally:
        await first.stop()
        await second.stop()
