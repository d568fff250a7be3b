"""The link between a worker and its supervisor: one end of a socket pair each.

The supervisor sends the worker its configuration first (validated by the supervisor, with the
reserved endpoints; secrets never pass through the environment or a file), then which batches
its observers need (again after a reload). Everything else flows from the worker to the
supervisor.

A frame is a 4-byte length, a 1-byte kind and the payload. A relayed batch is its signal, item
count, size and receiver id followed by the protobuf bytes of the request (the received bytes
when validation changed nothing, so relaying costs no encoding). Status reports, audit notes and
log records are pickled: both ends are the same program, and the socket pair is private to them
(inherited by the worker, never a path or a port anybody else can reach).

The worker never waits for the supervisor: frames go into the socket's buffer (the kernel's,
then the transport's); :meth:`LinkWriter.room` tells the ingest path when the supervisor is so
far behind that new requests must be refused (retryable) rather than buffered without bound.
Frames already in the kernel's buffer survive the worker's death: the supervisor reads them.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import socket
import struct
import threading
from collections.abc import AsyncIterator
from typing import Any

from gateway.otlp.batch import Batch, Signal

BATCH, STATUS, AUDIT, LOG, CONFIG, HEALTH, NEEDS = 1, 2, 3, 4, 5, 6, 7
_HEADER = struct.Struct("!IB")
_BATCH = struct.Struct("!BBIIH")  # signal, flags, items, nbytes, length of the receiver id
#: Batch flags: the supervisor counts its service health (the worker did not), and the batch
#: is only the spans and records holding an exception (for error tracking alone).
COUNT_HEALTH, EXCEPTIONS_ONLY = 1, 2
_SIGNALS = tuple(Signal)
_SIGNAL_CODES = {signal: code for code, signal in enumerate(_SIGNALS)}
MIB = 1024 * 1024
#: Bytes a worker may have waiting for the supervisor before it refuses new requests.
RELAY_BUFFER = 64 * MIB
SOCKET_BUFFER = 4 * MIB


def socket_pair() -> tuple[socket.socket, socket.socket]:
    """(supervisor end, worker end), with large kernel buffers; the worker end is inheritable."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    for sock in (ours, theirs):
        for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
    theirs.set_inheritable(True)
    return ours, theirs


def encode_batch(receiver: str, batch: Batch, flags: int = 0) -> bytes:
    """The payload of a relayed batch."""
    name = receiver.encode()
    code = _SIGNAL_CODES[batch.signal]
    head = _BATCH.pack(code, flags, batch.items, batch.nbytes, len(name))
    return b"".join((head, name, batch.serialized()))


def decode_batch(payload: bytes) -> tuple[str, Batch, int]:
    """(receiver id, batch, flags) of a relayed batch's payload; the request is decoded when
    read."""
    code, flags, items, nbytes, length = _BATCH.unpack_from(payload)
    start = _BATCH.size
    receiver = payload[start : start + length].decode()
    encoded = payload[start + length :]
    return receiver, Batch(_SIGNALS[code], None, items, encoded, nbytes), flags


class LinkWriter:
    """The worker's end: frames written without waiting, from the loop or any thread."""

    def __init__(self, writer: asyncio.StreamWriter, limit: int = RELAY_BUFFER) -> None:
        self._writer = writer
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self.limit = limit

    @classmethod
    async def connect(
        cls, fd: int, limit: int = RELAY_BUFFER
    ) -> tuple[LinkWriter, asyncio.StreamReader]:
        """The writer (and the reader, which sees EOF when the supervisor goes) over ``fd``."""
        sock = socket.socket(fileno=fd)
        sock.setblocking(False)
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        return cls(writer, limit), reader

    @property
    def buffered(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        return self._writer.transport.get_write_buffer_size()

    @property
    def closed(self) -> bool:
        return self._writer.transport.is_closing()

    def room(self, nbytes: int) -> bool:
        """Whether a batch of ``nbytes`` may be relayed now (always when nothing waits: a
        request larger than the buffer is still taken)."""
        if self.closed:
            return False
        buffered = self.buffered
        return buffered == 0 or buffered + nbytes <= self.limit

    def send_batch(self, receiver: str, batch: Batch, flags: int = 0) -> None:
        """Relay an accepted batch (loop thread only)."""
        self._frame(BATCH, encode_batch(receiver, batch, flags))

    def send_object(self, kind: int, value: Any) -> None:
        """Send a pickled status, audit note or log record; safe from any thread. Dropped
        once the link is closed (the supervisor is gone)."""
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        if threading.get_ident() == self._thread:
            self._frame(kind, payload)
        else:
            self._loop.call_soon_threadsafe(self._frame, kind, payload)

    def _frame(self, kind: int, payload: bytes) -> None:
        if self.closed:
            return
        self._writer.write(_HEADER.pack(len(payload), kind))
        self._writer.write(payload)

    async def close(self, timeout: float = 10.0) -> None:
        """Flush what is buffered (``timeout`` s at most), then close."""
        if not self.closed:
            with contextlib.suppress(TimeoutError, ConnectionError):
                await asyncio.wait_for(self._writer.drain(), timeout)
            self._writer.close()
        with contextlib.suppress(TimeoutError, ConnectionError):
            await asyncio.wait_for(self._writer.wait_closed(), 1.0)


async def read_frames(reader: asyncio.StreamReader) -> AsyncIterator[tuple[int, bytes]]:
    """Every frame until the worker's end is closed (a torn last frame is dropped)."""
    while True:
        try:
            length, kind = _HEADER.unpack(await reader.readexactly(_HEADER.size))
            payload = await reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        yield kind, payload


def write_object(writer: asyncio.StreamWriter, kind: int, value: Any) -> None:
    """Write one pickled frame (the supervisor's side: the worker's configuration)."""
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    writer.write(_HEADER.pack(len(payload), kind))
    writer.write(payload)


async def read_object(reader: asyncio.StreamReader, kind: int) -> Any:
    """The value of the next frame, which must be of ``kind`` (EOFError when the link ends)."""
    async for got, payload in read_frames(reader):
        if got != kind:
            raise EOFError(f"expected a frame of kind {kind}, got {got}")
        return load_object(payload)
    raise EOFError("the link ended")


def load_object(payload: bytes) -> Any:
    """A pickled frame's value (from our own worker process)."""
    return pickle.loads(payload)
