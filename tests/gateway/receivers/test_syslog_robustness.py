"""The ``syslog`` receiver when things go wrong: refusals while delivering, stopping with data
read and not yet handed over, connection resets, TLS handshakes ending after stop, hostile
octet counts, floods of tiny messages, cuts inside UTF-8 characters, and Python's own
``SysLogHandler`` over TCP. Every message received is counted once: accepted or refused.

The harness (:func:`running`, the look-alike :class:`Pipeline`) is the receiver tests'.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import logging.handlers
import socket
import struct
import time
from pathlib import Path

from gateway.receivers.syslog_framing import MAX_OCTET_COUNT, Frame, Framer, datagram_frame
from tests.support.certs import TestCa
from tests.support.syslog_harness import (
    Harness,
    eventually,
    running,
)
from tests.support.tls_clients import client_context

TCP = "syslog/tcp"
REASONS = ("backpressure", "spool_error", "not_ready", "parse_failure", "internal_error")


def refused(h: Harness, transport: str) -> float:
    return sum(h.refused(transport, reason) for reason in REASONS)


def balanced(h: Harness, transport: str) -> bool:
    """Every message received is accepted or refused, once."""
    received = h.syslog("messages_total", transport)
    return received == h.accepted(transport) + refused(h, transport)


def closed(h: Harness, reason: str) -> float:
    return h.sample(
        "otelgate_listener_connections_closed_total", listener="syslog/tcp", reason=reason
    )


def reset(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0) rather than a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def lines(count: int) -> bytes:
    return b"".join(b"<13>Oct 11 22:14:15 host app: message %06d\n" % i for i in range(count))


SMALL = {"timeout": "20ms", "max_bytes": 4096, "max_pending_bytes": 8192, "max_records": 50}


# --- counting ---------------------------------------------------------------------------------


async def test_a_batch_refused_by_consume_is_retried_and_counted_once() -> None:
    async with running(tcp=False) as h:
        h.pipeline.failing = 3  # the queue's put refuses three times (its spool cannot write)
        h.send_udp(b"<13>Oct 11 22:14:15 host app: one", b"<13>Oct 11 22:14:15 host app: two")
        await eventually(lambda: len(h.pipeline.bodies()) == 2)
        assert h.accepted("syslog/udp") == 2
        assert refused(h, "syslog/udp") == 0
        assert balanced(h, "syslog/udp")


async def test_a_batch_refused_by_consume_until_stop_is_counted_once_as_refused() -> None:
    async with running(tcp=False) as h:
        h.pipeline.failing = 10**9
        h.send_udp(b"<13>Oct 11 22:14:15 host app: one", b"<13>Oct 11 22:14:15 host app: two")
        await eventually(lambda: h.receiver.inputs[0].batcher.blocked is not None)
        await h.receiver.stop()
        assert (h.accepted("syslog/udp"), h.refused("syslog/udp", "spool_error")) == (0, 2)
        assert balanced(h, "syslog/udp")


# --- stopping ---------------------------------------------------------------------------------


async def test_stop_frames_and_delivers_what_a_connection_already_read() -> None:
    async with running(udp=False, batch=SMALL) as h:
        h.pipeline.refusing = True
        sock = socket.create_connection(("127.0.0.1", h.tcp_port))
        sock.sendall(lines(300) + b"<13>Oct 11 22:14:15 host app: partial")  # 15 KB: all read
        await eventually(lambda: h.receiver.inputs[0].batcher.blocked is not None)
        await asyncio.sleep(0.2)
        h.pipeline.refusing = False
        await h.receiver.stop()
        sock.close()
        bodies = h.pipeline.bodies()
        assert len(bodies) == 301
        assert bodies[-1] == "partial"
        assert (h.accepted(TCP), refused(h, TCP), h.syslog("messages_total", TCP)) == (301, 0, 301)


async def test_stop_counts_what_it_read_and_could_not_deliver() -> None:
    async with running(udp=False, batch=SMALL) as h:
        h.pipeline.refusing = True
        sock = socket.create_connection(("127.0.0.1", h.tcp_port))
        sock.sendall(lines(300) + b"<13>Oct 11 22:14:15 host app: partial")
        await eventually(lambda: h.receiver.inputs[0].batcher.blocked is not None)
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await h.receiver.stop()
        assert time.monotonic() - started < 4.0
        sock.close()
        assert h.pipeline.bodies() == []
        assert (refused(h, TCP), h.syslog("messages_total", TCP)) == (301, 301)


async def test_a_tls_handshake_ending_after_stop_is_closed(tmp_path: Path) -> None:
    ca = TestCa(tmp_path)
    server = ca.server()
    tls = {"cert_file": str(server.cert_file), "key_file": str(server.key_file)}
    context = client_context([ca.ca_file])
    async with running(udp=False, tcp={"endpoint": "127.0.0.1:0", "tls": tls}) as h:
        raw = socket.create_connection(("127.0.0.1", h.tcp_port))
        await asyncio.sleep(0.2)  # accepted; the handshake waits for the ClientHello
        await h.receiver.stop()

        def send() -> None:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
                message = b"<13>1 - h app - - - after stop"
                try:
                    sock.sendall(b"%d %s" % (len(message), message))
                    sock.recv(1)
                except OSError:
                    pass

        await asyncio.wait_for(asyncio.to_thread(send), 5.0)
        assert h.receiver.tcp is not None and h.receiver.tcp.connections == 0
        assert h.syslog("messages_total", TCP) == h.accepted(TCP) == 0


# --- resets -----------------------------------------------------------------------------------


async def test_a_reset_delivers_the_partial_message_and_is_counted() -> None:
    async with running(udp=False) as h:
        sock = socket.create_connection(("127.0.0.1", h.tcp_port))
        sock.sendall(b"<13>Oct 11 22:14:15 host app: complete\n<13>Oct 11 22:14:15 host app: cut")
        await eventually(lambda: h.pipeline.bodies() == ["complete"])
        reset(sock)
        await eventually(lambda: h.pipeline.bodies() == ["complete", "cut"])
        await eventually(lambda: closed(h, "reset") == 1)
        assert balanced(h, TCP)


async def test_a_reset_delivers_what_was_read_while_waiting_for_room() -> None:
    async with running(udp=False, batch=SMALL) as h:
        h.pipeline.refusing = True
        sock = socket.create_connection(("127.0.0.1", h.tcp_port))
        sock.sendall(lines(1000))  # 52 KB: read into the connection's buffer
        await eventually(lambda: h.receiver.inputs[0].batcher.blocked is not None)
        await asyncio.sleep(0.3)
        reset(sock)
        await asyncio.sleep(0.2)
        h.pipeline.refusing = False
        await eventually(lambda: len(h.pipeline.bodies()) == 1000)
        assert (h.accepted(TCP), refused(h, TCP)) == (1000, 0)
        assert balanced(h, TCP)


# --- senders and hostile streams --------------------------------------------------------------


async def test_python_syslog_handler_over_tcp_nul_ends_each_message() -> None:
    async with running(udp=False, tcp={"endpoint": "127.0.0.1:0", "read_timeout": "30s"}) as h:
        logger = logging.getLogger("test_syslog_robustness.handler")
        logger.propagate, logger.level = False, logging.INFO

        def send() -> logging.handlers.SysLogHandler:
            address = ("127.0.0.1", h.tcp_port)
            handler = logging.handlers.SysLogHandler(address, socktype=socket.SOCK_STREAM)
            logger.addHandler(handler)
            for i in range(5):
                logger.info("hello %d", i)
            return handler

        handler = await asyncio.to_thread(send)
        try:  # delivered while the connection is still open: NUL ends each message
            await eventually(lambda: len(h.pipeline.bodies()) == 5, timeout=5.0)
        finally:
            logger.removeHandler(handler)
            handler.close()
        assert h.pipeline.bodies() == [f"hello {i}" for i in range(5)]


def test_an_octet_count_over_the_ceiling_is_a_framing_error_not_a_swallow() -> None:
    errors: list[int] = []
    framer = Framer("auto", 480, lambda: errors.append(1))
    frames = framer.feed(b"999999999 <13>1 - h a - - - first\n<13>1 - h a - - - second\n")
    assert frames == [
        Frame(b"999999999 <13>1 - h a - - - first"),
        Frame(b"<13>1 - h a - - - second"),
    ]
    assert errors == [1] and framer.mode == "newline"
    big = b"%d <13>1 - h a - - - big" % MAX_OCTET_COUNT  # at the ceiling: a (long) message
    framer = Framer("octet_counting", 480, lambda: errors.append(1))
    assert framer.feed(big) == [] and framer.partial and errors == [1]


def test_a_cut_inside_a_utf8_character_backs_off_to_its_start() -> None:
    text = "日本語".encode() * 60  # 3 bytes a character
    line = b"<13>1 - h app - - - " + text
    assert len(line) > 480 and (480 - 20) % 3
    (frame,) = Framer("newline", 480).feed(line + b"\n")
    frame.data.decode("utf-8")  # no broken character at the end
    assert len(frame.data) < 480 and len(frame.data) + frame.cut == len(line)
    framed = datagram_frame(line, 480)
    assert framed is not None and framed == frame
    (counted,) = Framer("octet_counting", 480).feed(b"%d %s" % (len(line), line))
    assert counted == frame
    assert datagram_frame(b"a" * 500, 480) == Frame(b"a" * 480, 20)  # ASCII: cut where it is


async def test_a_chunk_of_tiny_messages_does_not_hold_the_event_loop() -> None:
    """The receiver yields between messages. The objects every earlier test left in this
    pytest process are frozen out of the garbage collector first: a full collection of them
    (hundreds of ms late in the suite) would be a pause of the test process, not the receiver."""
    gc.collect()
    gc.freeze()
    try:
        await _tiny_messages_do_not_hold_the_loop()
    finally:
        gc.unfreeze()


async def _tiny_messages_do_not_hold_the_loop() -> None:
    async with running(udp=False, batch={"timeout": "20ms", "max_pending_bytes": "64MiB"}) as h:
        gaps: list[float] = []
        stop = asyncio.Event()

        async def tick() -> None:
            loop = asyncio.get_running_loop()
            last = loop.time()
            while not stop.is_set():
                await asyncio.sleep(0.001)
                now = loop.time()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        sock = socket.create_connection(("127.0.0.1", h.tcp_port))
        sock.sendall(b"a\n" * 32768)  # one 64 KiB read of 32768 messages
        await eventually(lambda: h.syslog("messages_total", TCP) == 32768, timeout=30.0)
        stop.set()
        await ticker
        sock.close()
        assert max(gaps) < 0.25, f"{len(gaps)} loop turns, the longest {max(gaps):.3f}s"
