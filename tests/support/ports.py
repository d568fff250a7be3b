"""Free TCP ports on 127.0.0.1 for tests that must name a port before a process binds it."""

from __future__ import annotations

import random
import socket
from pathlib import Path

_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    """The lowest port the kernel hands to outgoing connections (Linux default 32768)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port that was free a moment ago, never handed out before in this process.

    Picked below the kernel's ephemeral range: a port taken from ``bind(0)`` is in that range,
    so between closing it and the gateway binding it, any outgoing connection of the test run
    may be given it ("Address already in use"). Below the range only a listener can take it.
    """
    low = max(_ephemeral_low(), 2048)
    for _ in range(200):
        port = random.randrange(max(1024, low - 12000), low)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range after 200 tries")
