"""Connection cap, read timeouts and a header size limit for the uvicorn listeners.

uvicorn closes a keep-alive connection that idles after a response (``timeout_keep_alive``) but
nothing else: a connection that never sends a request, trickles its headers (slowloris) or
stalls its body is held for ever, and so is its file descriptor. uvicorn's
``limit_concurrency`` does not help: it answers 503 to *requests* once the limit is reached
but keeps every connection open, so idle sockets still use up the process's descriptors.

:class:`GuardedHttpProtocol` is uvicorn's httptools protocol plus, per listener:

- a connection cap: a connection over ``max_connections`` is closed as soon as it is accepted;
- a header deadline: the request line and headers must be complete within
  ``read_header_timeout`` of the connection (first request) or of the request's first byte
  (later requests); else 408 (or a silent close when nothing was sent);
- a body gap limit: while a body is being read, no more than ``read_body_timeout`` without a
  byte (time the gateway itself is not reading, by flow control or before it sends
  ``100 Continue``, does not count); else 408;
- ``max_request_header_size`` bytes of request line and headers; else 431;
- the keep-alive idle timeout is uvicorn's own (``timeout_keep_alive``), counted here.

It overrides these hooks of uvicorn's ``HttpToolsProtocol`` (checked against uvicorn 0.54):
``connection_made``, ``connection_lost``, ``data_received``, the parser callbacks
``on_message_begin``, ``on_url``, ``on_header``, ``on_headers_complete``, ``on_body``,
``on_message_complete``, and ``on_response_complete``, ``send_400_response`` and
``timeout_keep_alive_handler``; ``tests/gateway/test_http_guard.py`` drives each of them.

On a TLS listener :class:`TlsHttpProtocol` adds the ASGI TLS extension to each request's scope
(``scope["extensions"]["tls"]``: the verified client certificate's subject, the TLS version;
:func:`gateway.security.tls.asgi_tls_extension`), read once per connection. A plaintext
listener uses :class:`GuardedHttpProtocol` itself, so TLS costs it nothing per request. The
guard's deadlines start once the handshake is done: asyncio bounds the handshake itself (60 s).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.listeners.connection_metrics import ConnectionMetrics
from gateway.listeners.settings import HttpListenerSettings
from gateway.security.tls import asgi_tls_extension

log = logging.getLogger("otelgate.listener")

Reason = Literal["header_timeout", "body_timeout", "idle_timeout", "header_too_large"]
# waiting: no request in progress; headers: a request started; body: its headers are read;
# busy: the request is read and the app answers it.
Phase = Literal["waiting", "headers", "body", "busy"]
WARN_EVERY = 60.0  # seconds between two "listener is full" warnings


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """One HTTP listener's limits; durations in seconds."""

    max_connections: int
    read_header_timeout: float
    read_body_timeout: float
    idle_timeout: float
    max_request_header_size: int

    @classmethod
    def of(cls, settings: HttpListenerSettings) -> HttpLimits:
        """The limits a listener's settings give."""
        return cls(
            max_connections=settings.max_connections,
            read_header_timeout=settings.read_header_timeout,
            read_body_timeout=settings.read_body_timeout,
            idle_timeout=settings.idle_timeout,
            max_request_header_size=settings.max_request_header_size,
        )


class ConnectionGuard:
    """A listener's limits and the counters they feed; makes its protocol class."""

    def __init__(self, listener: str, limits: HttpLimits, metrics: ConnectionMetrics) -> None:
        self.listener = listener
        self.limits = limits
        self._refused = metrics.refused.labels(listener)
        self._closed = metrics.closed
        self._metrics = metrics
        self._last_warning = -WARN_EVERY
        self._refused_since_warning = 0

    def protocol_class(self, tls: bool = False) -> type[GuardedHttpProtocol]:
        """The uvicorn protocol class for this listener (``uvicorn.Config(http=...)``);
        ``tls`` when it serves TLS (the requests' scopes then carry the TLS extension)."""
        base = TlsHttpProtocol if tls else GuardedHttpProtocol
        return type(base.__name__, (base,), {"guard": self})

    def watch(self, connections: set[Any]) -> None:
        """Report the size of uvicorn's connection set as the open-connections gauge."""
        self._metrics.watch(self.listener, self.limits.max_connections, lambda: len(connections))

    def refused(self) -> None:
        """Count a connection closed at once for being over the cap; warn now and then."""
        self._refused.inc()
        self._refused_since_warning += 1
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY:
            log.warning(
                "listener %s is at max_connections (%d): refused %d connection(s)",
                self.listener, self.limits.max_connections, self._refused_since_warning,
            )  # fmt: skip
            self._last_warning, self._refused_since_warning = now, 0

    def closed(self, reason: Reason) -> None:
        """Count a connection the gateway closed for ``reason``."""
        self._closed.labels(self.listener, reason).inc()


def _reply(status: int, phrase: str) -> bytes:
    body = phrase.encode("ascii")
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (status, body, len(body), body)
    )


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of :class:`ConnectionGuard`."""

    guard: ClassVar[ConnectionGuard]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limits = self.guard.limits
        self.timeout_keep_alive = limits.idle_timeout  # type: ignore[assignment]  # a float
        self._refused_at_start = False
        self._phase: Phase = "waiting"
        self._timer: asyncio.TimerHandle | None = None
        self._reason: Reason | None = None
        self._header_bytes = 0
        self._header_too_large = False
        self._last_body = 0.0

    # --- connection -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.guard.limits.max_connections:
            self._refused_at_start = True
            self.guard.refused()
            transport.abort()
            return
        super().connection_made(transport)
        self._arm(self.guard.limits.read_header_timeout, "header_timeout")

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused_at_start:
            return  # never added to uvicorn's connections; nothing else to release
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # The first byte after an idle period starts the next request's header deadline.
        if self._phase == "waiting" and self._reason != "header_timeout":
            self._arm(self.guard.limits.read_header_timeout, "header_timeout")
        super().data_received(data)

    # --- parser callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = "headers"
        self._header_bytes = 0
        if self._reason != "header_timeout":  # a pipelined request, read while busy
            self._arm(self.guard.limits.read_header_timeout, "header_timeout")

    def on_url(self, url: bytes) -> None:
        self._count_header(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header(len(name) + len(value))
        super().on_header(name, value)

    def _count_header(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.guard.limits.max_request_header_size:
            self._header_too_large = True
            # httptools turns this into HttpParserError; uvicorn then calls send_400_response.
            raise ValueError("request header too large")

    def on_headers_complete(self) -> None:
        self._disarm()
        self._phase = "body"
        self._last_body = self.loop.time()
        self._arm(self.guard.limits.read_body_timeout, "body_timeout")
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._last_body = self.loop.time()
        super().on_body(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()
        self._phase = "busy"
        if self.cycle is not None and self.cycle.response_complete:
            # Answered before the body was read (e.g. 413): uvicorn's keep-alive timer was
            # cancelled by the body's bytes, so this idle period is timed here.
            self._phase = "waiting"
            self._arm(self.guard.limits.idle_timeout, "idle_timeout")

    # --- responses and closing ------------------------------------------------------------

    def on_response_complete(self) -> None:
        idle_next = not self.pipeline
        super().on_response_complete()
        if idle_next and self._phase == "busy":
            self._phase = "waiting"  # uvicorn's keep-alive timer runs now

    def send_400_response(self, msg: str) -> None:
        if not self._header_too_large:
            super().send_400_response(msg)
            return
        self.guard.closed("header_too_large")
        self.transport.write(_reply(431, "Request Header Fields Too Large"))
        self.transport.close()

    def timeout_keep_alive_handler(self) -> None:
        if not self.transport.is_closing():
            self.guard.closed("idle_timeout")
        super().timeout_keep_alive_handler()

    # --- the timer ------------------------------------------------------------------------

    def _arm(self, delay: float, reason: Reason) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, self._expired)
        self._reason = reason

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._reason = None, None

    def _expired(self) -> None:
        reason = self._reason
        self._timer, self._reason = None, None
        if reason is None or self.transport is None or self.transport.is_closing():
            return
        if reason == "body_timeout":
            limit = self.guard.limits.read_body_timeout
            quiet = self.loop.time() - self._last_body
            # Not the client's stall: the gateway paused reading (flow control), or the client
            # waits for the "100 Continue" the app sends only when it starts reading.
            ours = self.flow.read_paused or (
                self.cycle is not None and self.cycle.waiting_for_100_continue
            )
            if ours or quiet < limit:
                self._arm(limit if ours else limit - quiet, reason)
                return
        answered = self.cycle is not None and self.cycle.response_started
        if self._phase == "headers" or (self._phase == "body" and not answered):
            self.transport.write(_reply(408, "Request Timeout"))
        self.guard.closed(reason)
        self.transport.close()


class TlsHttpProtocol(GuardedHttpProtocol):
    """:class:`GuardedHttpProtocol` on a TLS listener: each request's scope has the ASGI TLS
    extension (``scope["extensions"]["tls"]``) of its connection."""

    _tls: dict[object, object] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self._refused_at_start:  # the handshake is done: the peer's certificate is known
            found = asgi_tls_extension(transport.get_extra_info("ssl_object"))
            self._tls = {key: value for key, value in found.items()}

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._tls is not None:  # a copy per request: an app may change its scope
            self.scope.setdefault("extensions", {})["tls"] = self._tls.copy()
