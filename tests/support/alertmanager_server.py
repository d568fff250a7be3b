"""A real Alertmanager (Debian's ``prometheus-alertmanager``) on 127.0.0.1, without
clustering, routing everything to a receiver with no integrations."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx

from tests.support.ports import free_port
from tests.support.processes import stop_process, wait_ready

BINARIES = ("prometheus-alertmanager", "alertmanager")
MISSING = (
    "no Alertmanager binary on PATH: these tests need a real one "
    "(apt-get install -y --no-install-recommends prometheus-alertmanager)"
)
CONFIG = """\
route:
  receiver: blackhole
receivers:
  - name: blackhole
"""


def alertmanager_binary() -> str:
    """The path of the Alertmanager executable, or an error saying how to get it."""
    for name in BINARIES:
        found = shutil.which(name)
        if found is not None:
            return found
    raise RuntimeError(MISSING)


class AlertmanagerServer:
    """One Alertmanager process in ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.binary = alertmanager_binary()
        self.workdir = workdir
        self.port = free_port()
        self.config_path = workdir / "alertmanager.yml"
        self.log_path = workdir / "alertmanager.log"
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(CONFIG)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> AlertmanagerServer:
        """Start and wait until ``/-/ready`` answers 200."""
        args = [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",  # empty: no clustering, no gossip port
            "--log.level=warn",
        ]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(args, cwd=self.workdir, stdout=log, stderr=log)
        if wait_ready(self.proc, f"{self.url}/-/ready", "alertmanager", self.logs, timeout):
            return self
        self.stop()
        raise TimeoutError(f"alertmanager not ready after {timeout}s:\n{self.logs()}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM and wait; SIGKILL if it hangs."""
        stop_process(self.proc, timeout)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alerts(self, **labels: str) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts`` filtered by label equality."""
        params = {"filter": [f'{name}="{value}"' for name, value in labels.items()]}
        response = httpx.get(f"{self.url}/api/v2/alerts", params=params, timeout=5)
        response.raise_for_status()
        return list(response.json())

    def __enter__(self) -> AlertmanagerServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
