"""The ``syslog`` receiver when the pipelines refuse: TCP stops reading and later delivers
everything in order, UDP drops are counted, stop counts what is left, nothing counted twice."""

from __future__ import annotations

import asyncio
import socket

from prometheus_client import CollectorRegistry

from gateway.components import REGISTRY
from gateway.receivers.syslog import SyslogReceiver, SyslogReceiverConfig
from gateway.registry import Host
from gateway.selfmetrics import GatewayMetrics
from tests.support.syslog_harness import eventually, nowhere, running

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
    host = Host(metrics=GatewayMetrics(registry), emit=nowhere)
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
