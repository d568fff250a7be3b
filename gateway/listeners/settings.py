"""Connection limits and timeouts of the gateway's listeners (OTLP/HTTP, OTLP/gRPC, admin).

Every listener caps its connections and closes the ones that stall or idle, so idle or slow
clients cannot take every file descriptor of the process. The gRPC keepalive settings are
shaped like the Collector's (``keepalive.server_parameters`` / ``enforcement_policy``).
``tls`` serves TLS or mTLS with the Collector's keys (:mod:`gateway.security.tls`).
"""

from __future__ import annotations

from pydantic import Field

from gateway.config.values import Duration, ListenEndpoint, StrictModel
from gateway.security.tls import GrpcTlsSettings, TlsSettings


class HttpListenerSettings(ListenEndpoint):
    """An HTTP listener's limits; durations are seconds or strings such as ``10s``."""

    max_connections: int = Field(default=4096, gt=0)
    read_header_timeout: Duration = Field(default=10.0, gt=0)
    read_body_timeout: Duration = Field(default=30.0, gt=0)
    idle_timeout: Duration = Field(default=60.0, gt=0)
    max_request_header_size: int = Field(default=64 * 1024, ge=1024)
    tls: TlsSettings | None = None


class GrpcServerParameters(StrictModel):
    """What the server does to connections: close idle or old ones, ping quiet clients."""

    max_connection_idle: Duration = Field(default=300.0, gt=0)
    max_connection_age: Duration | None = Field(default=None, gt=0)
    max_connection_age_grace: Duration | None = Field(default=None, gt=0)
    time: Duration = Field(default=7200.0, gt=0)
    timeout: Duration = Field(default=20.0, gt=0)


class GrpcEnforcementPolicy(StrictModel):
    """How often clients may ping; a client pinging more often is disconnected (GOAWAY)."""

    min_time: Duration = Field(default=10.0, gt=0)
    permit_without_stream: bool = True


class GrpcKeepalive(StrictModel):
    """gRPC keepalive, as in the Collector's OTLP receiver."""

    server_parameters: GrpcServerParameters = GrpcServerParameters()
    enforcement_policy: GrpcEnforcementPolicy = GrpcEnforcementPolicy()


class GrpcListenerSettings(ListenEndpoint):
    """A gRPC listener's limits."""

    max_connections: int = Field(default=4096, gt=0)
    max_concurrent_streams: int = Field(default=100, gt=0)
    handshake_timeout: Duration = Field(default=10.0, gt=0)
    keepalive: GrpcKeepalive = GrpcKeepalive()
    tls: GrpcTlsSettings | None = None
