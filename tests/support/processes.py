"""Server processes the tests start: waiting for them to answer, stopping them."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any

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


def stop_process(proc: subprocess.Popen[Any] | None, timeout: float) -> None:
    """SIGTERM and wait up to ``timeout``; SIGKILL if it hangs. Nothing if it has ended."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def pump_lines(stream: Any, lines: list[str]) -> None:
    """Append every line of ``stream`` to ``lines`` until it ends (run it in a thread)."""
    for line in stream:
        lines.append(line)
