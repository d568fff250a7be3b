"""The OTLP ports every worker shares: reserved by the supervisor, handed to the workers.

The supervisor binds each worker receiver's endpoints with ``SO_REUSEPORT`` without listening:
that resolves port 0 to a real port (every worker must use the same one), fails early and
clearly when a port is taken, and keeps the port while a worker restarts. A bound socket that
does not listen takes no connections: the kernel spreads them over the workers' listeners.
"""

from __future__ import annotations

import socket
from typing import Any

from gateway.config.model import Config
from gateway.listeners.http_server import bind, parse_endpoint
from gateway.workers.roles import worker_receiver

#: receiver id -> protocol (grpc, http) -> host:port
Endpoints = dict[str, dict[str, str]]


def _endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def reserve(config: Config) -> tuple[Endpoints, list[socket.socket]]:
    """Bind (not listen on) every worker receiver endpoint; the concrete endpoints and the
    sockets that hold them. OSError names the endpoint that cannot be bound."""
    endpoints: Endpoints = {}
    held: list[socket.socket] = []
    try:
        for name, cfg in config.receivers.items():
            protocols = getattr(cfg, "protocols", None)
            if not worker_receiver(name) or protocols is None:
                continue
            for protocol in ("grpc", "http"):
                settings = getattr(protocols, protocol, None)
                if settings is None:
                    continue
                # Without SO_REUSEPORT first: fails when any other program listens there,
                # even one that shares ports (another gateway's workers); resolves port 0.
                probe = bind(settings.endpoint, listen=False)
                host, _ = parse_endpoint(settings.endpoint)
                endpoint = _endpoint(host, probe.getsockname()[1])
                probe.close()
                held.append(bind(endpoint, reuse_port=True, listen=False))
                endpoints.setdefault(name, {})[protocol] = endpoint
    except OSError:
        for sock in held:
            sock.close()
        raise
    return endpoints, held


def with_endpoints(config: Config, endpoints: Endpoints) -> Config:
    """``config`` with the reserved endpoints in place of the configured ones."""
    if not endpoints:
        return config
    receivers: dict[str, Any] = dict(config.receivers)
    for name, protocols in endpoints.items():
        cfg = receivers.get(name)
        if cfg is None:
            continue
        updates = {}
        for protocol, endpoint in protocols.items():
            settings = getattr(cfg.protocols, protocol, None)
            if settings is not None:
                updates[protocol] = settings.model_copy(update={"endpoint": endpoint})
        receivers[name] = cfg.model_copy(
            update={"protocols": cfg.protocols.model_copy(update=updates)}
        )
    return config.model_copy(update={"receivers": receivers})
