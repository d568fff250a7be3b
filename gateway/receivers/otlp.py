"""The ``otlp`` receiver: OTLP/gRPC and OTLP/HTTP listeners feeding one ingest path.

Its config picks the protocols and their listener limits; the listeners themselves are
:mod:`gateway.receivers.otlp_grpc` and :mod:`gateway.receivers.otlp_http`.
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    Field,
    model_validator,
)

from gateway.config.values import (
    StrictModel,
)
from gateway.listeners.grpc_limits import server_options
from gateway.listeners.http_server import EmbeddedServer
from gateway.listeners.settings import (
    GrpcListenerSettings,
    HttpListenerSettings,
)
from gateway.receivers.ingest import Ingest
from gateway.receivers.otlp_grpc import OtlpGrpcReceiver
from gateway.receivers.otlp_http import OtlpHttpReceiver
from gateway.registry import ALL_SIGNALS, ComponentFactory, Host, ReceiverReport

MIB = 1024 * 1024


class GrpcProtocolConfig(GrpcListenerSettings):
    """OTLP/gRPC listener settings (connection limits: :mod:`gateway.listeners.settings`)."""

    endpoint: str = "0.0.0.0:4317"
    max_recv_msg_size_mib: int = Field(default=64, gt=0)


class HttpProtocolConfig(HttpListenerSettings):
    """OTLP/HTTP listener settings; sizes are bytes (limits: :mod:`gateway.listeners.settings`)."""

    endpoint: str = "0.0.0.0:4318"
    max_request_body_size: int = Field(default=64 * 1024 * 1024, gt=0)
    max_decompressed_size: int = Field(default=64 * 1024 * 1024, gt=0)


class OtlpProtocols(StrictModel):
    """Which OTLP protocols to serve; ``None`` is off. A key given as null means defaults."""

    grpc: GrpcProtocolConfig | None = None
    http: HttpProtocolConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _null_means_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: {} if v is None and k in ("grpc", "http") else v for k, v in data.items()}
        return {} if data is None else data

    @model_validator(mode="after")
    def _at_least_one(self) -> OtlpProtocols:
        if self.grpc is None and self.http is None:
            raise ValueError("at least one protocol (grpc or http) must be set")
        return self


class OtlpReceiverConfig(StrictModel):
    """The ``otlp`` receiver."""

    protocols: OtlpProtocols


class OtlpReceiver:
    """One ``otlp`` receiver: its gRPC server and its HTTP server, whichever are configured."""

    def __init__(self, name: str, config: OtlpReceiverConfig, host: Host) -> None:
        self.name = name
        self.config = config
        self.grpc: OtlpGrpcReceiver | None = None
        self.http: EmbeddedServer | None = None
        self._running = False
        routers = host.routes(name)
        grpc_cfg, http_cfg = config.protocols.grpc, config.protocols.http
        if grpc_cfg is not None:
            ingest = Ingest(
                "grpc", routers, host.metrics, host.observers, host.admission, host.auth
            )
            self.grpc = OtlpGrpcReceiver(
                ingest,
                grpc_cfg.endpoint,
                grpc_cfg.max_recv_msg_size_mib * MIB,
                name=f"{name}/grpc",
                options=server_options(grpc_cfg),
                metrics=host.metrics.connections,
                max_connections=grpc_cfg.max_connections,
                tls=grpc_cfg.tls,
                reuse_port=host.reuse_port,
            )
        if http_cfg is not None:
            if host.guard is None:
                raise ValueError("the otlp receiver needs the host's connection guard")
            ingest = Ingest(
                "http", routers, host.metrics, host.observers, host.admission, host.auth
            )
            http = OtlpHttpReceiver(
                ingest, http_cfg.max_request_body_size, http_cfg.max_decompressed_size
            )
            listener = f"{name}/http"
            guard = host.guard(listener, http_cfg)
            self.http = EmbeddedServer(
                listener, http.app(), http_cfg.endpoint, guard, tls=http_cfg.tls,
                reuse_port=host.reuse_port,
            )  # fmt: skip

    def bind(self) -> None:
        """Take the HTTP port now (grpc binds in start)."""
        if self.http is not None:
            self.http.bind()

    async def start(self) -> None:
        """Serve gRPC, then HTTP."""
        if self.grpc is not None:
            await self.grpc.start()
        if self.http is not None:
            await self.http.start()
        self._running = True

    async def stop(self) -> None:
        """Stop both listeners; calls in progress get 2 s to finish."""
        self._running = False
        if self.grpc is not None:
            await self.grpc.stop(grace=2.0)
        if self.http is not None:
            await self.http.stop(timeout=2.0)

    def max_connections(self) -> int:
        """Both listeners' connection caps."""
        protocols = (self.config.protocols.grpc, self.config.protocols.http)
        return sum(p.max_connections for p in protocols if p is not None)

    def listening(self) -> list[str]:
        """What the receiver listens on, e.g. ``OTLP/gRPC on 0.0.0.0:4317``."""
        found = [f"OTLP/gRPC on {self.grpc.endpoint}"] if self.grpc is not None else []
        return found + ([f"OTLP/HTTP on {self.http.endpoint}"] if self.http is not None else [])

    def report(self) -> ReceiverReport:
        """Running or stopped, with the configured endpoints."""
        protocols = [("grpc", self.config.protocols.grpc), ("http", self.config.protocols.http)]
        endpoints = [f"{p} {c.endpoint}" for p, c in protocols if c is not None]
        return ReceiverReport("ok" if self._running else "stopped", endpoints)


FACTORY = ComponentFactory(
    kind="receiver",
    type_name="otlp",
    config=OtlpReceiverConfig,
    signals=ALL_SIGNALS,
    create=OtlpReceiver,
    example={
        "protocols": {"grpc": {"endpoint": "127.0.0.1:0"}, "http": {"endpoint": "127.0.0.1:0"}}
    },
)
