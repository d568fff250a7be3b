"""The process's file-descriptor limit, checked against the listeners' connection caps.

The caps only protect the gateway if their sum, plus what the gateway needs for itself, fits
in ``RLIMIT_NOFILE``: otherwise ``accept()`` fails (EMFILE) on every listener, the liveness
probe's included, before any cap is reached. Like Go's runtime, the gateway raises its soft
limit up to the hard limit when it needs to; when even the hard limit is too low it says which
settings to lower.
"""

from __future__ import annotations

import logging

try:
    import resource
except ImportError:  # not on Windows
    resource = None  # type: ignore[assignment]

log = logging.getLogger("otelgate")

RESERVED = 512  # files, spool, store, exporters' outgoing connections, grpc and loop internals


def ensure_fd_budget(connections: int, reserved: int = RESERVED) -> int | None:
    """Make room for ``connections`` sockets plus ``reserved`` descriptors; returns the soft
    limit in force (None where it cannot be read)."""
    if resource is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = connections + reserved
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    except (ValueError, OSError) as exc:
        log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target, exc)
    if soft < needed:
        log.warning(
            "the listeners' max_connections add up to %d, and the gateway keeps %d more open "
            "files for itself, but the open-file limit is %d: lower max_connections or raise "
            "the limit (ulimit -n, LimitNOFILE=), or a flood of connections can stop every "
            "listener", connections, reserved, soft,
        )  # fmt: skip
    return soft
