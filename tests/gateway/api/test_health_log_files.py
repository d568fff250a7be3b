"""``/health`` lists the files the gateway writes with their rotation status, a critical one
makes the gateway ``degraded`` naming the file, and ``/metrics`` has their metrics."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from exporters.file import FileExporter
from gateway.config.loading import parse_config
from gateway.logfiles import status
from gateway.service import Gateway

pytestmark = pytest.mark.timeout(60)
GIB = 1024**3


@pytest.fixture(autouse=True)
def roomy_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The statuses asserted here must not depend on the test machine's free space."""
    monkeypatch.setattr(status, "disk_usage", lambda path: (100 * GIB, 50 * GIB, 50 * GIB))


def _config(out: Path) -> dict[str, Any]:
    return {
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": "127.0.0.1:0"}}}},
        "exporters": {"file/x": {"path": str(out), "rotation": {"max_size": "1KiB"}}},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file/x"]}}},
        "admin": {"endpoint": "127.0.0.1:0"},
        "health": {"cache_ttl": 0},
    }


async def test_health_and_metrics_show_the_rotation_status(tmp_path: Path) -> None:
    out = tmp_path / "data" / "out.jsonl"
    gateway = Gateway(parse_config(yaml.safe_dump(_config(out)), environ={}))
    await gateway.start()
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gateway.admin_app), base_url="http://admin"
    )
    try:
        body = (await client.get("/health")).json()
        [entry] = body["log_files"]
        assert entry["owner"] == "exporter file/x" and entry["path"] == str(out)
        assert entry["status"] == "healthy" and entry["reasons"] == []
        assert not any("log file" in reason for reason in body["reasons"])
        # The disk is nearly full: critical, and the gateway is degraded because of it.
        exporter = gateway.queues["file/x"].exporter
        assert isinstance(exporter, FileExporter)
        exporter.log_file.usage = lambda _: (10 * 2**30, 10 * 2**30 - 2**20, 2**20)
        body = (await client.get("/health")).json()
        [entry] = body["log_files"]
        assert entry["status"] == "critical" and entry["free_bytes"] == 2**20
        assert body["status"] in ("degraded", "unhealthy")
        assert (
            f"log file {out} (exporter file/x) is critical: 1 MiB free (critical, 0.0%)"
            in (body["reasons"])
        )
        metrics = (await client.get("/metrics")).text
        assert f'otelgate_log_file_status{{owner="exporter file/x",path="{out}"}} 2.0' in metrics
        schema = (await client.get("/openapi.json")).json()
        assert "LogFileHealth" in schema["components"]["schemas"]
    finally:
        await client.aclose()
        await gateway.stop(drain_timeout=1.0)


async def test_an_unreadable_directory_is_critical_and_health_still_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "data" / "out.jsonl"
    gateway = Gateway(parse_config(yaml.safe_dump(_config(out)), environ={}))
    await gateway.start()
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gateway.admin_app), base_url="http://admin"
    )
    real = os.listdir

    def listdir(path: Any = ".") -> list[str]:
        if str(path) == str(out.parent):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    try:
        with monkeypatch.context() as patch:
            patch.setattr(os, "listdir", listdir)
            answer = await client.get("/health")
            metrics = await client.get("/metrics")
        assert answer.status_code == 200 and metrics.status_code == 200
        [entry] = answer.json()["log_files"]
        assert entry["status"] == "critical"
        assert entry["reasons"] == [f"cannot list {out.parent}: [Errno 13] Permission denied: "
                                    f"'{out.parent}'"]  # fmt: skip
        assert f'otelgate_log_file_status{{owner="exporter file/x",path="{out}"}} 2.0' in (
            metrics.text
        )
    finally:
        await client.aclose()
        await gateway.stop(drain_timeout=1.0)
