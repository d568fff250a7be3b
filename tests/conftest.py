"""Every test gets its own data directory: gateways built in tests (and the processes tests
start, which inherit the environment) keep their store and files there, not in the working
directory."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _own_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTELGATE_DATA_DIR", str(tmp_path / "otelgate-data"))
