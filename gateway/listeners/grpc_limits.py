"""Connection limits of the OTLP/gRPC listener as grpc core channel arguments, and its
open-connection count read from grpc's channelz.

Everything here is enforced by grpc core itself:

- ``grpc.max_allowed_incoming_connections``: a connection over the cap is closed at once;
- ``grpc.server_handshake_timeout_ms``: a connection that has not sent the HTTP/2 preface and
  SETTINGS within ``handshake_timeout`` is closed (the gRPC form of a header timeout);
- ``grpc.max_concurrent_streams``: the SETTINGS value; a client keeps further calls waiting
  on its side until a stream of that connection ends;
- ``grpc.max_connection_idle_ms`` / ``_age_ms`` / ``_age_grace_ms``: GOAWAY to connections
  without calls for that long (or that are that old);
- keepalive: the server pings quiet clients (``time``/``timeout``) and sends GOAWAY to clients
  that ping more often than ``min_time`` (``too_many_pings``).

grpc core does not report refused or timed-out connections; the open-connection gauge comes
from channelz (enabled by default in grpc core), read through the functions grpcio's own
``grpcio-channelz`` package calls. Where they are missing the gauge is left unset.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from grpc._cython import cygrpc

from gateway.listeners.settings import GrpcListenerSettings

log = logging.getLogger("otelgate.receiver.grpc")

_get_servers: Callable[[int], bytes] | None = getattr(cygrpc, "channelz_get_servers", None)
_get_sockets: Callable[[int, int, int], bytes] | None = getattr(
    cygrpc, "channelz_get_server_sockets", None
)
PAGE = 1000  # sockets per channelz call


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def server_options(settings: GrpcListenerSettings) -> list[tuple[str, int]]:
    """The channel arguments that enforce ``settings``' limits."""
    server, policy = settings.keepalive.server_parameters, settings.keepalive.enforcement_policy
    options = [
        ("grpc.enable_channelz", 1),
        ("grpc.max_allowed_incoming_connections", settings.max_connections),
        ("grpc.server_handshake_timeout_ms", _ms(settings.handshake_timeout)),
        ("grpc.max_concurrent_streams", settings.max_concurrent_streams),
        ("grpc.max_connection_idle_ms", _ms(server.max_connection_idle)),
        ("grpc.keepalive_time_ms", _ms(server.time)),
        ("grpc.keepalive_timeout_ms", _ms(server.timeout)),
        ("grpc.http2.min_ping_interval_without_data_ms", _ms(policy.min_time)),
        ("grpc.keepalive_permit_without_calls", int(policy.permit_without_stream)),
    ]
    if server.max_connection_age is not None:
        options.append(("grpc.max_connection_age_ms", _ms(server.max_connection_age)))
    if server.max_connection_age_grace is not None:
        options.append(("grpc.max_connection_age_grace_ms", _ms(server.max_connection_age_grace)))
    return options


def channelz_server_ids() -> set[int]:
    """The channelz ids of this process's gRPC servers (empty when channelz is unavailable)."""
    if _get_servers is None:
        return set()
    ids: set[int] = set()
    start = 0
    while True:
        page: dict[str, Any] = json.loads(_get_servers(start))
        found = [int(s["ref"]["serverId"]) for s in page.get("server", [])]
        ids.update(found)
        if page.get("end", True) or not found:
            return ids
        start = max(found) + 1


def connection_counter(server_id: int) -> Callable[[], float]:
    """A function counting the open connections of channelz server ``server_id``."""

    def count() -> float:
        if _get_sockets is None:
            return float("nan")
        total, start = 0, 0
        try:
            while True:
                page: dict[str, Any] = json.loads(_get_sockets(server_id, start, PAGE))
                refs = page.get("socketRef", [])
                total += len(refs)
                if page.get("end", True) or not refs:
                    return float(total)
                start = max(int(r["socketId"]) for r in refs) + 1
        except (ValueError, KeyError, RuntimeError) as exc:  # the server is gone
            log.debug("channelz: cannot count connections of server %d: %s", server_id, exc)
            return float("nan")

    return count
