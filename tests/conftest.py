"""Every test runs in its own empty working directory with its own data directory: gateways
built in tests (and the processes tests start, which inherit both) keep their store and files
there, and nothing a user left in the directory pytest was started from (an ./otelgate-data
from `otelgate demo`, say) can change a result. Tests reach repository files through paths
made from ``__file__``.

No test may reach AWS: the AWS credential chain never asks the instance metadata address
(169.254.169.254, outside 127.0.0.1) and never reads the user's ~/.aws files."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _own_directories(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTELGATE_DATA_DIR", str(tmp_path / "otelgate-data"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))  # beside tmp_path, not in it
