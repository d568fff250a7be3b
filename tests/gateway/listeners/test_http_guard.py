"""Connection cap, header/body/idle timeouts and header size limit of the uvicorn listeners,
against a real uvicorn server on 127.0.0.1 driven by raw sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.types import Receive, Scope, Send

from gateway.listeners.connection_metrics import ConnectionMetrics
from gateway.listeners.http_guard import ConnectionGuard, HttpLimits
from gateway.listeners.http_server import EmbeddedServer

LIMITS = HttpLimits(
    max_connections=4,
    read_header_timeout=0.6,
    read_body_timeout=0.6,
    idle_timeout=0.6,
    max_request_header_size=4096,
)
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the body and answers its length; /early answers 413 without reading it;
    /slow waits 1.5 s before reading (the gateway, not the client, stops reading)."""
    assert scope["type"] == "http"
    if scope["path"] == "/early":
        headers = [(b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    if scope["path"] == "/slow":
        await asyncio.sleep(1.5)
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = str(size).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Listener:
    def __init__(self, limits: HttpLimits) -> None:
        self.registry = CollectorRegistry()
        guard = ConnectionGuard("test/http", limits, ConnectionMetrics(self.registry))
        self.server = EmbeddedServer("test/http", app, "127.0.0.1:0", guard)

    def sample(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, {"listener": "test/http", **labels})
        return value or 0.0

    def closed(self, reason: str) -> float:
        return self.sample("otelgate_listener_connections_closed_total", reason=reason)

    async def connect(self) -> Streams:
        return await asyncio.open_connection("127.0.0.1", self.server.port)


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    running = Listener(LIMITS)
    await running.server.start()
    yield running
    await running.server.stop(timeout=1.0)


async def until_closed(reader: asyncio.StreamReader, timeout: float) -> tuple[bytes, float]:
    """Everything the server sent until it closed the connection, and how long that took."""
    started, data = time.monotonic(), b""
    async with asyncio.timeout(timeout):
        while chunk := await reader.read(65536):
            data += chunk
    return data, time.monotonic() - started


async def trickle(writer: asyncio.StreamWriter, data: bytes, every: float) -> None:
    for i in range(len(data)):
        if writer.is_closing():
            return
        writer.write(data[i : i + 1])
        await asyncio.sleep(every)


REQUEST = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"


async def test_connections_over_the_cap_are_closed_at_once_and_counted(listener: Listener) -> None:
    held = [await listener.connect() for _ in range(LIMITS.max_connections)]
    extra = [await listener.connect() for _ in range(3)]
    for reader, _ in extra:
        data, took = await until_closed(reader, 0.5)
        assert data == b"" and took < 0.5
    assert listener.sample("otelgate_listener_connections_refused_total") == 3
    assert listener.sample("otelgate_listener_connections") == LIMITS.max_connections
    assert listener.sample("otelgate_listener_connections_limit") == LIMITS.max_connections
    reader, writer = held[0]
    writer.write(REQUEST)  # the connections within the cap are served
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
    held[1][1].close()
    await asyncio.sleep(0.1)
    reader, writer = await listener.connect()  # a freed slot takes a new connection
    writer.write(REQUEST)
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")


async def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    listener: Listener,
) -> None:
    reader, _ = await listener.connect()
    data, took = await until_closed(reader, 3)
    assert data == b""  # no request, no answer
    assert LIMITS.read_header_timeout - 0.1 <= took < LIMITS.read_header_timeout + 0.5
    assert listener.closed("header_timeout") == 1


async def test_slowloris_headers_are_cut_off_at_the_deadline_with_408(listener: Listener) -> None:
    reader, writer = await listener.connect()
    headers = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    sending = asyncio.create_task(trickle(writer, headers, every=0.02))  # a byte per 20 ms
    data, took = await until_closed(reader, 3)
    sending.cancel()
    assert data.startswith(b"HTTP/1.1 408 ")
    assert took < LIMITS.read_header_timeout + 0.5  # a deadline, not reset by each byte
    assert listener.closed("header_timeout") == 1


async def test_crlf_trickled_after_a_keep_alive_request_does_not_hold_the_connection(
    listener: Listener,
) -> None:
    reader, writer = await listener.connect()
    writer.write(REQUEST)
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
    await reader.readexactly(1)  # "5"
    sending = asyncio.create_task(trickle(writer, b"\r\n" * 100, every=0.05))
    data, took = await until_closed(reader, 3)
    sending.cancel()
    assert data == b""  # blank lines are not a request: nothing to answer
    assert took < LIMITS.read_header_timeout + 0.5
    assert listener.closed("header_timeout") == 1


async def test_a_stalled_body_is_answered_408_after_the_body_timeout(listener: Listener) -> None:
    reader, writer = await listener.connect()
    writer.write(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
    data, took = await until_closed(reader, 3)
    assert data.startswith(b"HTTP/1.1 408 ")
    assert LIMITS.read_body_timeout - 0.1 <= took < LIMITS.read_body_timeout + 0.5
    assert listener.closed("body_timeout") == 1


async def test_a_slow_but_steady_body_is_read_to_the_end(listener: Listener) -> None:
    reader, writer = await listener.connect()
    writer.write(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n")
    await trickle(writer, b"abcdefgh", every=0.3)  # 2.4 s in all; never 0.6 s without a byte
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
    assert head.startswith(b"HTTP/1.1 200") and await reader.readexactly(1) == b"8"
    assert listener.closed("body_timeout") == 0


async def test_time_the_gateway_itself_does_not_read_is_not_a_stall(listener: Listener) -> None:
    body = b"x" * (4 * 1024 * 1024)  # far past uvicorn's read buffer: reading pauses
    async with httpx.AsyncClient(timeout=10) as client:
        url = f"http://127.0.0.1:{listener.server.port}/slow"
        response = await client.post(url, content=body)
    assert response.status_code == 200 and response.text == str(len(body))
    assert listener.closed("body_timeout") == 0


async def test_a_client_waiting_for_100_continue_is_not_stalled(listener: Listener) -> None:
    reader, writer = await listener.connect()
    writer.write(
        b"POST /slow HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"
    )
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)  # after 1.5 s
    assert interim.startswith(b"HTTP/1.1 100 ")
    writer.write(b"body")
    assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)).startswith(b"HTTP/1.1 200")
    assert listener.closed("body_timeout") == 0


async def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(
    listener: Listener,
) -> None:
    reader, writer = await listener.connect()
    for _ in range(2):  # keep-alive works, then the connection idles
        writer.write(REQUEST)
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        await reader.readexactly(1)
    data, took = await until_closed(reader, 3)
    assert data == b"" and took < LIMITS.idle_timeout + 0.5
    assert listener.closed("idle_timeout") == 1


async def test_an_answer_sent_before_the_body_was_read_still_times_out_the_idle_connection(
    listener: Listener,
) -> None:
    reader, writer = await listener.connect()
    writer.write(b"POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 413")
    writer.write(b"0123456789")  # the rest of the body, after the answer
    data, took = await until_closed(reader, 3)
    assert data == b"" and took < LIMITS.idle_timeout + 0.5
    assert listener.closed("idle_timeout") == 1


async def test_headers_over_the_size_limit_get_431(listener: Listener) -> None:
    reader, writer = await listener.connect()
    writer.write(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8192 + b"\r\n\r\n")
    data, _ = await until_closed(reader, 2)
    assert data.startswith(b"HTTP/1.1 431 ")
    assert listener.closed("header_too_large") == 1


async def test_ordinary_clients_are_not_affected(listener: Listener) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        url = f"http://127.0.0.1:{listener.server.port}/v1/traces"
        answers = await asyncio.gather(*(client.post(url, content=b"x" * 1000) for _ in range(3)))
    assert [a.text for a in answers] == ["1000"] * 3
    for reason in ("header_timeout", "body_timeout", "idle_timeout", "header_too_large"):
        assert listener.closed(reason) == 0
