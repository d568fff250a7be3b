"""A real Prometheus (``/usr/bin/prometheus``) for end-to-end tests, on 127.0.0.1.

It scrapes the targets given (every second) and, with ``remote_write_receiver``, accepts
remote write on ``/api/v1/write``. ``stop()`` then ``start()`` restarts it on the same port
with the same storage directory, for outage tests. ``.ci/run`` installs Prometheus.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.ports import free_port
from tests.support.processes import stop_process, wait_ready

MISSING = (
    "the prometheus binary is not on PATH: these tests need a real Prometheus. .ci/run "
    "installs it (apt-get install -y --no-install-recommends prometheus)"
)


def prometheus_binary() -> str:
    """The path of the prometheus executable, or an error saying how to get it."""
    found = shutil.which("prometheus")
    if found is None:
        raise RuntimeError(MISSING)
    return found


class PrometheusServer:
    """One Prometheus process; ``scrape`` maps job names to ``(host:port, path)`` targets."""

    def __init__(
        self,
        workdir: Path,
        *,
        scrape: dict[str, tuple[str, str]] | None = None,
        remote_write_receiver: bool = False,
        port: int | None = None,
    ) -> None:
        self.binary = prometheus_binary()
        self.workdir = workdir
        self.port = port or free_port()
        self.remote_write_receiver = remote_write_receiver
        self.storage = workdir / "data"
        self.config_path = workdir / "prometheus.yml"
        self.log_path = workdir / "prometheus.log"
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "scrape_configs": [
                {
                    "job_name": job,
                    "honor_labels": True,  # keep the services' job/instance from the exporter
                    "metrics_path": path,
                    "static_configs": [{"targets": [target]}],
                }
                for job, (target, path) in (scrape or {}).items()
            ],
        }
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def write_url(self) -> str:
        return f"{self.url}/api/v1/write"

    def start(self, timeout: float = 60.0) -> PrometheusServer:
        """Start and wait until ``/-/ready`` answers 200."""
        args = [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.storage}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1d",
            "--log.level=warn",
        ]
        if self.remote_write_receiver:
            args.append("--web.enable-remote-write-receiver")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(args, cwd=self.workdir, stdout=log, stderr=log)
        if wait_ready(self.proc, f"{self.url}/-/ready", "prometheus", self.logs, timeout, 0.2):
            return self
        self.kill()
        raise TimeoutError(f"prometheus not ready after {timeout}s:\n{self.logs()}")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (Prometheus flushes its WAL) and wait; SIGKILL if it hangs."""
        stop_process(self.proc, timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant PromQL query; the ``result`` list of the vector."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def wait_for(
        self,
        expr: str,
        check: Callable[[list[dict[str, Any]]], bool] = bool,
        timeout: float = 60.0,
    ) -> list[dict[str, Any]]:
        """Poll ``expr`` until ``check(result)``; the last result (the caller asserts)."""
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            try:
                result = self.query(expr)
            except httpx.HTTPError:
                result = []
            if check(result):
                return result
            time.sleep(0.5)
        return result

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self.kill()


def value_of(result: list[dict[str, Any]], **labels: str) -> float:
    """The value of the one series in ``result`` whose labels include ``labels``."""
    found = [r for r in result if labels.items() <= r["metric"].items()]
    assert len(found) == 1, (labels, result)
    return float(found[0]["value"][1])
