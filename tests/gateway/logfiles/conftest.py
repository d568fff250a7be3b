"""The logfiles tests see a roomy disk unless a test gives its own free-space probe: the
status they assert must not depend on the machine running them."""

from __future__ import annotations

import pytest

from gateway.logfiles import status

GIB = 1024**3


@pytest.fixture(autouse=True)
def roomy_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """``disk_usage`` (looked up at each call) answers 50 of 100 GiB free."""
    monkeypatch.setattr(status, "disk_usage", lambda path: (100 * GIB, 50 * GIB, 50 * GIB))
