"""OTLP/gRPC receiver on grpc.aio, in the gateway's event loop.

Handlers take the request as raw bytes and decode it themselves, so the received bytes can be
forwarded unchanged. Refusals map to the codes clients act on: INVALID_ARGUMENT for bad data,
UNAVAILABLE with ``RetryInfo`` for backpressure, RESOURCE_EXHAUSTED without it for messages
over the size limit (grpc enforces ``max_receive_message_length`` itself, after
decompression). Connection limits are grpc core's own (:mod:`gateway.listeners.grpc_limits`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import grpc

from gateway.errors import RefusedError
from gateway.listeners.connection_metrics import ConnectionMetrics
from gateway.listeners.grpc_limits import channelz_server_ids, connection_counter
from gateway.otlp.batch import Signal
from gateway.receivers.ingest import COUNTED_ON_REFUSAL, Ingest
from gateway.receivers.status import refusal_status
from gateway.security.auth import ANONYMOUS, Identity
from gateway.security.tls import GrpcTlsSettings, peer_subject_from_grpc
from gateway.security.tls_context import ServerTls

log = logging.getLogger("otelgate.receiver.grpc")

SERVICES = {
    Signal.TRACES: "opentelemetry.proto.collector.trace.v1.TraceService",
    Signal.METRICS: "opentelemetry.proto.collector.metrics.v1.MetricsService",
    Signal.LOGS: "opentelemetry.proto.collector.logs.v1.LogsService",
}


Handler = Callable[[bytes, grpc.aio.ServicerContext[bytes, bytes]], Awaitable[bytes]]


class OtlpGrpcReceiver:
    """The three OTLP Export services of one receiver on a grpc.aio server."""

    def __init__(
        self,
        ingest: Ingest,
        endpoint: str,
        max_recv_msg_size: int,
        *,
        name: str = "otlp/grpc",
        options: list[tuple[str, int]] | None = None,
        metrics: ConnectionMetrics | None = None,
        max_connections: int = 0,
        tls: GrpcTlsSettings | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.ingest = ingest
        self.reuse_port = reuse_port  # share the port with other worker processes
        self.endpoint = endpoint
        self.max_recv_msg_size = max_recv_msg_size
        self.name = name
        self.options = options or []
        self._metrics = metrics
        self._max_connections = max_connections
        self.tls = ServerTls(name, tls) if tls is not None else None
        self.server: grpc.aio.Server | None = None
        self.port: int | None = None

    def _handler(self, signal: Signal) -> Handler:
        async def export(body: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            try:
                identity = self._identify(signal, context)
                self.ingest.router(signal)
                ticket = self.ingest.admission.admit(len(body))
            except RefusedError as exc:
                if exc.reason not in COUNTED_ON_REFUSAL:
                    self.ingest.refuse(signal, exc.reason)
                await self._abort(context, exc)
            try:
                response = await self.ingest.receive(signal, body, "protobuf", identity)
            except RefusedError as exc:  # ingest counted it
                await self._abort(context, exc)
            finally:
                ticket.release()
            return response.SerializeToString()

        return export

    def _identify(
        self, signal: Signal, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> Identity:
        """Who sends (``authorization`` metadata or client certificate), when auth is on."""
        auth = self.ingest.auth
        if auth is None or not auth.enabled:
            return ANONYMOUS
        metadata = context.invocation_metadata() or ()
        authorization = next((str(v) for k, v in metadata if k == "authorization"), None)
        subject = peer_subject_from_grpc(context) if authorization is None else None
        return self.ingest.identify(signal, authorization, subject, context.peer())

    async def _abort(
        self, context: grpc.aio.ServicerContext[bytes, bytes], error: RefusedError
    ) -> None:
        status = refusal_status(error)
        log.debug("refused export (%s): %s", error.grpc_code.name, error)
        await context.abort(
            error.grpc_code,
            str(error),
            trailing_metadata=(("grpc-status-details-bin", status.SerializeToString()),),
        )

    async def start(self) -> None:
        """Bind and start serving (over TLS when configured); raises OSError with the endpoint
        when it cannot bind, or naming the file when the TLS files cannot be used."""
        if self.tls is not None:
            self.tls.load()
        options = [
            *self.options,
            ("grpc.max_receive_message_length", self.max_recv_msg_size),
            ("grpc.so_reuseport", 1 if self.reuse_port else 0),
        ]
        before = channelz_server_ids()
        server = grpc.aio.server(options=options)
        created = channelz_server_ids() - before
        if self._metrics is not None and len(created) == 1:
            count = connection_counter(created.pop())
            self._metrics.watch(self.name, self._max_connections, count)
        handlers = {}
        for signal, service in SERVICES.items():
            method = grpc.unary_unary_rpc_method_handler(self._handler(signal))
            handlers[service] = grpc.method_handlers_generic_handler(service, {"Export": method})
        server.add_generic_rpc_handlers(tuple(handlers.values()))
        try:
            if self.tls is not None:
                port = server.add_secure_port(self.endpoint, self.tls.grpc_credentials())
            else:
                port = server.add_insecure_port(self.endpoint)
        except RuntimeError as exc:
            raise OSError(f"cannot listen for OTLP/gRPC on {self.endpoint}: {exc}") from exc
        if port == 0:
            raise OSError(f"cannot listen for OTLP/gRPC on {self.endpoint}")
        self.port = port
        await server.start()
        self.server = server
        if self.tls is not None:
            await self.tls.start()

    async def stop(self, grace: float) -> None:
        """Stop taking new calls; let calls in progress finish for up to ``grace`` s."""
        if self.tls is not None:
            await self.tls.stop()
        if self.server is not None:
            await self.server.stop(grace)
