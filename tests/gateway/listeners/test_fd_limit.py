"""The open-file limit is raised to fit the listeners' connection caps, or the gateway says
which settings to lower."""

from __future__ import annotations

import resource
import subprocess
import sys
from collections.abc import Iterator

import pytest

from gateway.listeners.fd_limit import ensure_fd_budget


@pytest.fixture
def restore_limit() -> Iterator[tuple[int, int]]:
    limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    yield limits
    resource.setrlimit(resource.RLIMIT_NOFILE, limits)


def test_the_soft_limit_is_raised_to_what_the_caps_need(restore_limit) -> None:
    _, hard = restore_limit
    if hard != resource.RLIM_INFINITY and hard < 2000:
        pytest.fail(f"this test needs a hard open-file limit of at least 2000, not {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    assert ensure_fd_budget(1200, reserved=100) == 1300
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (1300, hard)
    assert ensure_fd_budget(100, reserved=100) == 1300  # never lowered


def test_a_hard_limit_too_low_is_reported_with_what_to_change() -> None:
    # In a child process: lowering the hard limit cannot be undone without privileges.
    code = (
        "import logging, resource\n"
        "logging.basicConfig()\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))\n"
        "from gateway.listeners.fd_limit import ensure_fd_budget\n"
        "print(ensure_fd_budget(4096))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stdout.strip() == "256"
    assert "max_connections add up to 4096" in done.stderr
    assert "lower max_connections or raise the limit" in done.stderr
