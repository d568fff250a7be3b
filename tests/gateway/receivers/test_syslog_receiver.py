"""The ``syslog`` receiver on real sockets (127.0.0.1, port 0): config, UDP, TCP with both
framings, TLS, limits, port sharing, and util-linux ``logger`` as a real sender (the harness:
tests/support/syslog_harness.py; backpressure: test_syslog_backpressure.py).

What ``logger`` sends was checked against util-linux 2.38: ``--udp`` sends one message per
datagram without a newline; ``--tcp`` ends each message with LF; ``--octet-count`` prefixes
the length (RFC 6587).
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from gateway.components import REGISTRY
from gateway.receivers.syslog import SyslogReceiver, SyslogReceiverConfig
from gateway.registry import Host
from gateway.selfmetrics import GatewayMetrics
from tests.support.certs import TestCa
from tests.support.ports import free_port
from tests.support.syslog_harness import (
    LOGGER,
    RFC3164,
    RFC5424,
    attributes,
    eventually,
    nowhere,
    running,
)
from tests.support.tls_clients import client_context

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
        host = Host(metrics=GatewayMetrics(CollectorRegistry()), emit=nowhere,
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
