"""Running uvicorn servers inside the gateway's own event loop.

The gateway binds each listening socket itself (so a busy port is a clear error naming the
endpoint, before anything else starts) and hands it to uvicorn. uvicorn's own signal handling
is switched off: SIGTERM belongs to the gateway, which stops receivers, drains the exporter
queues and only then exits. Each server has its own connection cap and read timeouts
(:mod:`gateway.listeners.http_guard`), so a full OTLP listener leaves the admin listener answering.
With ``tls`` settings the server speaks TLS (mTLS with ``client_ca_file``) and, with
``reload_interval``, picks up replaced certificate files (:mod:`gateway.security.tls_context`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator

import uvicorn
from starlette.types import ASGIApp

from gateway.listeners.http_guard import ConnectionGuard
from gateway.security.tls import TlsSettings
from gateway.security.tls_context import ServerTls


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the gateway handles signals; see module docstring


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) into its parts."""
    host, _, port = endpoint.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


def bind(endpoint: str, reuse_port: bool = False, listen: bool = True) -> socket.socket:
    """A listening TCP socket for ``endpoint``; OSError names the endpoint on failure.

    ``reuse_port``: processes that all set it share the port and the kernel spreads their
    connections (gateway.workers); ``listen=False`` only reserves the port.
    """
    host, port = parse_endpoint(endpoint)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {endpoint}: {exc.strerror}") from exc
    sock.setblocking(False)
    return sock


class EmbeddedServer:
    """One uvicorn server for one ASGI app on one endpoint, within ``guard``'s limits; over
    TLS when ``tls`` is given."""

    def __init__(
        self,
        name: str,
        app: ASGIApp,
        endpoint: str,
        guard: ConnectionGuard,
        tls: TlsSettings | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.name = name
        self.reuse_port = reuse_port
        self.endpoint = endpoint
        self._app = app
        self._guard = guard
        self.tls = ServerTls(name, tls) if tls is not None else None
        self._socket: socket.socket | None = None
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        assert self._socket is not None
        return int(self._socket.getsockname()[1])

    def bind(self) -> None:
        """Bind the socket now, so all ports are checked before anything starts."""
        self._socket = bind(self.endpoint, self.reuse_port)

    async def start(self) -> None:
        """Serve on the bound socket; returns once uvicorn is accepting connections. OSError
        when the TLS files cannot be used (naming the file)."""
        if self._socket is None:
            self.bind()
        assert self._socket is not None
        if self.tls is not None:
            self.tls.load()
        config = uvicorn.Config(
            self._app,
            log_config=None,
            access_log=False,
            lifespan="off",
            interface="asgi3",
            http=self._guard.protocol_class(tls=self.tls is not None),
            ws="none",  # an upgraded connection would leave the guard's accounting
            server_header=False,
            timeout_graceful_shutdown=5,
        )
        if self.tls is not None:
            config.load()  # serve() keeps a loaded config: its SSLContext is the listener's own
            config.ssl = self.tls.ssl_context()
        self._server = _QuietServer(config)
        self._guard.watch(self._server.server_state.connections)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raise why uvicorn stopped
                raise RuntimeError(f"{self.name} server stopped during start-up")
            await asyncio.sleep(0.01)
        if self.tls is not None:
            await self.tls.start()

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting; let requests in progress finish for up to ``timeout`` s."""
        if self.tls is not None:
            await self.tls.stop()
        if self._server is None or self._task is None:
            if self._socket is not None:
                self._socket.close()
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            self._server.force_exit = True
            await self._task
