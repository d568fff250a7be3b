"""Waiting for a server process the tests started to answer."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import httpx


def wait_ready(
    proc: subprocess.Popen[bytes],
    url: str,
    what: str,
    logs: Callable[[], str],
    timeout: float,
    every: float = 0.1,
) -> bool:
    """Poll ``url`` until it answers 200 (True) or ``timeout`` passes (False); a process that
    exits meanwhile is a ``RuntimeError`` quoting its logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{logs()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(every)
    return False
