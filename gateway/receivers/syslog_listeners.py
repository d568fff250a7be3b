"""The syslog receiver's sockets: UDP datagrams, and TCP (or TLS) streams framed into messages
(:mod:`gateway.receivers.syslog_framing`).

Limits. A TCP connection over ``max_connections`` is closed as soon as it is accepted (counted
in ``otelgate_listener_connections_refused_total``). A connection is closed when it idles for
``idle_timeout``, or when a message it started stays incomplete for ``read_timeout`` of reading
(time the gateway spends not reading, under backpressure, does not count; with TLS the handshake
gets ``read_timeout`` too); the partial message is still delivered (marked cut when an octet
count announced more). Both closes are counted in
``otelgate_listener_connections_closed_total`` (``idle_timeout``, ``read_timeout``).

Backpressure. A TCP connection hands each message to its :class:`StreamSink` and awaits it:
while the sink has no room the connection reads nothing, asyncio stops reading the socket once
its buffer is full, and the sender's TCP window closes (syslog over TCP has no other flow
control). UDP cannot push back: the datagram callback decides, and counts, what it cannot take.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.listeners.connection_metrics import ConnectionMetrics
from gateway.listeners.http_server import bind, parse_endpoint
from gateway.receivers.syslog_framing import Frame, Framer, Framing
from gateway.security.tls import TlsSettings
from gateway.security.tls_context import ServerTls

log = logging.getLogger("otelgate.syslog")

READ_SIZE = 64 * 1024  # bytes asked of a TCP stream at a time (also its buffer limit)
WARN_EVERY = 60.0  # seconds between two "listener is full" warnings
YIELD_EVERY = 256  # messages a connection hands over before letting the loop serve others


# --- UDP ------------------------------------------------------------------------------------


def bind_udp(endpoint: str, reuse_port: bool = False) -> socket.socket:
    """A bound UDP socket for ``endpoint``; OSError names the endpoint on failure. No
    SO_REUSEADDR: on UDP it would let a second process bind the port and take its datagrams."""
    host, port = parse_endpoint(endpoint)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {endpoint} (udp): {exc.strerror}") from exc
    sock.setblocking(False)
    return sock


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, receive: Callable[[bytes, str | None], None]) -> None:
        self.receive = receive

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.receive(data, peer_of(addr))

    def error_received(self, exc: Exception) -> None:  # ICMP errors of earlier sends: none here
        log.debug("syslog udp socket error: %s", exc)


class UdpListener:
    """A UDP socket handing each datagram to ``receive(data, peer address)``."""

    def __init__(
        self, endpoint: str, receive: Callable[[bytes, str | None], None], reuse_port: bool
    ) -> None:
        self.endpoint = endpoint
        self._receive = receive
        self._reuse_port = reuse_port
        self._socket: socket.socket | None = None
        self._transport: asyncio.DatagramTransport | None = None

    @property
    def address(self) -> str:
        """``host:port`` as bound (the configured endpoint before :meth:`bind`)."""
        return _address(self._socket, self.endpoint)

    def bind(self) -> None:
        self._socket = bind_udp(self.endpoint, self._reuse_port)

    async def start(self) -> None:
        if self._socket is None:
            self.bind()
        loop = asyncio.get_running_loop()
        receive = self._receive
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(receive), sock=self._socket
        )

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        elif self._socket is not None:
            self._socket.close()
        self._socket = None


# --- TCP ------------------------------------------------------------------------------------


class StreamSink(Protocol):
    """Where a TCP connection's messages go."""

    def framed(self, messages: int) -> None:
        """Count messages framed (received), before they are taken or lost."""

    async def take(self, frame: Frame, peer: str | None) -> None:
        """Take one message, waiting while there is no room (the backpressure); once the
        receiver stops, count it lost rather than wait."""

    def lost(self, messages: int, reason: str) -> None:
        """Count messages read but never taken (the receiver stopped meanwhile)."""

    def framing_error(self) -> None:
        """Count an octet-counting header that was not a length."""


@dataclass(frozen=True, slots=True)
class TcpLimits:
    """One TCP listener's limits; durations in seconds."""

    max_connections: int
    idle_timeout: float
    read_timeout: float
    framing: Framing
    max_message_size: int


class _Connection(asyncio.StreamReaderProtocol):
    """A connection's stream: a reset by the peer ends it like an end of stream (what was
    received before it is still framed and delivered), and :meth:`finish` stops reading new
    data while what is buffered is still read."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        serve: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(reader, serve, loop=loop)
        self.reader = reader
        self.stream: asyncio.BaseTransport | None = None
        self.reset = False  # the peer reset the connection
        self.finished = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.stream = transport
        super().connection_made(transport)

    def finish(self) -> None:
        """Read nothing more from the socket; the reader ends after what it holds."""
        if self.finished:
            return
        self.finished = True
        if isinstance(self.stream, asyncio.ReadTransport) and not self.stream.is_closing():
            self.stream.pause_reading()
        self.reader.feed_eof()

    def data_received(self, data: bytes) -> None:
        if not self.finished:
            super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if isinstance(exc, ConnectionResetError):
            self.reset, exc = True, None
        super().connection_lost(exc)


def _buffered(reader: asyncio.StreamReader) -> bytes:
    """Bytes read from the socket and not yet from ``reader`` (asyncio has no API for it)."""
    return bytes(getattr(reader, "_buffer", b""))


class TcpListener:
    """A TCP (or TLS) server; each connection is framed and fed to ``sink``."""

    def __init__(
        self,
        name: str,
        endpoint: str,
        limits: TcpLimits,
        sink: StreamSink,
        metrics: ConnectionMetrics,
        tls: TlsSettings | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.name = name  # the listener label: "<receiver id>/tcp"
        self.endpoint = endpoint
        self.limits = limits
        self.tls = ServerTls(name, tls) if tls is not None else None
        self._sink = sink
        self._metrics = metrics
        self._reuse_port = reuse_port
        self._socket: socket.socket | None = None
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], _Connection] = {}
        self._stopping = False
        self._last_warning = -WARN_EVERY
        self._refused_since_warning = 0

    @property
    def address(self) -> str:
        """``host:port`` as bound (the configured endpoint before :meth:`bind`)."""
        return _address(self._socket, self.endpoint)

    @property
    def connections(self) -> int:
        return len(self._connections)

    def bind(self) -> None:
        self._socket = bind(self.endpoint, self._reuse_port)

    async def start(self) -> None:
        """Serve; OSError when the TLS files cannot be used (naming the file)."""
        if self._socket is None:
            self.bind()
        context: ssl.SSLContext | None = None
        if self.tls is not None:
            self.tls.load()
            context = self.tls.ssl_context()
        loop = asyncio.get_running_loop()

        def accept() -> _Connection:
            return _Connection(asyncio.StreamReader(READ_SIZE, loop), self._serve, loop=loop)

        self._stopping = False
        assert self._socket is not None
        self._server = await loop.create_server(
            accept,
            sock=self._socket,
            ssl=context,
            ssl_handshake_timeout=self.limits.read_timeout if context is not None else None,
        )
        self._metrics.watch(self.name, self.limits.max_connections, lambda: self.connections)
        if self.tls is not None:
            await self.tls.start()

    async def finish(self, grace: float) -> None:
        """Stop accepting and reading; give the connections up to ``grace`` seconds to frame
        and hand over what they already read (a connection whose TLS handshake ends later is
        closed at once)."""
        self._stopping = True
        if self.tls is not None:
            await self.tls.stop()
        if self._server is not None:
            self._server.close()
        for connection in self._connections.values():
            connection.finish()
        if self._connections and grace > 0:
            await asyncio.wait(list(self._connections), timeout=grace)

    async def stop(self, grace: float = 0.0) -> None:
        """:meth:`finish`, then end every connection left (messages it read and could not
        hand over are counted by the sink)."""
        await self.finish(grace)
        if self._server is None:
            if self._socket is not None:
                self._socket.close()
            return
        tasks = list(self._connections)
        if tasks:  # the sink gives up at once once the receiver stops: they end soon
            await asyncio.wait(tasks, timeout=1.0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 2.0)
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._stopping:  # a TLS handshake that ended after stop
            writer.transport.abort()
            return
        if len(self._connections) >= self.limits.max_connections:
            self._refuse()
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        connection = writer.transport.get_protocol()
        assert isinstance(connection, _Connection)
        self._connections[task] = connection
        peer = peer_of(writer.get_extra_info("peername"))
        try:
            await self._read(reader, peer, connection)
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            log.debug("listener %s: connection from %s ended: %s", self.name, peer, exc)
        except asyncio.CancelledError:
            pass  # stop() ended it; ending normally spares Python 3.11's stream callback an error
        finally:
            self._connections.pop(task, None)
            writer.transport.abort()  # nothing is ever written: no need to flush

    async def _read(
        self, reader: asyncio.StreamReader, peer: str | None, connection: _Connection
    ) -> None:
        limits, sink = self.limits, self._sink
        framer = Framer(limits.framing, limits.max_message_size, sink.framing_error)
        loop = asyncio.get_running_loop()
        frames: list[Frame] = []
        done = 0
        waited = 0.0  # reading time spent on the current incomplete message
        try:
            while True:
                partial = framer.partial
                started = loop.time()
                try:
                    async with asyncio.timeout(
                        max(0.0, limits.read_timeout - waited) if partial else limits.idle_timeout
                    ):
                        data = await reader.read(READ_SIZE)
                except TimeoutError:
                    reason = "read_timeout" if partial else "idle_timeout"
                    self._metrics.closed.labels(self.name, reason).inc()
                    data = b""
                frames, done = (framer.feed(data) if data else framer.end()), 0
                sink.framed(len(frames))
                waited = waited + loop.time() - started if partial and not frames else 0.0
                for frame in frames:
                    await sink.take(frame, peer)
                    done += 1
                    if not done % YIELD_EVERY:  # tiny messages: let the loop serve others
                        await asyncio.sleep(0)
                if not data:
                    if connection.reset:
                        self._metrics.closed.labels(self.name, "reset").inc()
                    return
                await asyncio.sleep(0)  # a fast sender does not keep the loop to itself
        except asyncio.CancelledError:
            rest = framer.feed(_buffered(reader)) + framer.end()  # read, never framed
            sink.framed(len(rest))
            lost = len(frames) - done + len(rest)
            if lost:
                sink.lost(lost, "not_ready")
            raise

    def _refuse(self) -> None:
        self._metrics.refused.labels(self.name).inc()
        self._refused_since_warning += 1
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY:
            log.warning(
                "listener %s is at max_connections (%d): refused %d connection(s)",
                self.name, self.limits.max_connections, self._refused_since_warning,
            )  # fmt: skip
            self._last_warning, self._refused_since_warning = now, 0


def _address(sock: socket.socket | None, endpoint: str) -> str:
    if sock is None or sock.fileno() < 0:
        return endpoint
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def peer_of(address: Any) -> str | None:
    """A socket address as ``host:port`` (``[v6]:port``), None when unknown."""
    if not isinstance(address, tuple) or len(address) < 2:
        return None
    host, port = address[:2]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
