"""``logging.file`` on the real gateway process: its own log goes to stderr and to a file that
rotates (small ``max_size``), rotated files are gzipped, every record is there once and in
order, and ``/health`` and ``/metrics`` describe the file."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.logfiles.naming import rotated_files
from tests.support.gateway_process import GatewayProcess
from tests.support.rotated_files import all_lines

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

FREE_SPACE = re.compile(r"\d+ MiB free \((warning|critical)(, [\d.]+%)?\)")
RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")  # the text format


def test_the_gateway_log_rotates_into_gzip_files(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "otelgate.log"
    config = {
        "exporters": {"file": {"path": str(tmp_path / "out.jsonl")}},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file"]}}},
        "logging": {"file": str(log_file), "rotation": {"max_size": 300}},
    }
    gateway = GatewayProcess(config, tmp_path)
    with gateway:
        assert gateway.proc is not None
        for _ in range(4):  # each reload logs a few lines
            gateway.proc.send_signal(signal.SIGHUP)
            time.sleep(0.3)
        deadline = time.monotonic() + 20
        entry: dict[str, Any] = {}
        while time.monotonic() < deadline:
            body = httpx.get(f"{gateway.admin_url}/health", timeout=5).json()
            [entry] = [e for e in body["log_files"] if e["owner"] == "logging"]
            files = rotated_files(log_file)
            if entry["rotations"] and files and all(f.compressed for f in files):
                break
            time.sleep(0.2)
        assert entry["path"] == str(log_file)
        # The status is computed from this machine's real disk: only free space may lower it.
        spaces = [FREE_SPACE.fullmatch(reason) for reason in entry["reasons"]]
        assert len(spaces) <= 1 and all(spaces), entry
        assert entry["status"] == (spaces[0][1] if spaces and spaces[0] else "healthy")
        assert entry["failures"] == {}
        assert entry["rotations"] >= 2 and entry["compressed_bytes"] > 0
        assert [e["owner"] for e in body["log_files"]] == ["logging", "exporter file"]
        assert gateway.metric("otelgate_log_file_rotations_total", owner="logging", reason="size")
    assert gateway.proc.returncode == 0
    stderr = [line for line in gateway.logs().splitlines() if RECORD.match(line)]
    written = [line.decode() for line in all_lines(log_file)]
    assert written == stderr  # every record, once, in order, across the rotated files
    assert any("configuration reloaded" in line for line in written)
    assert written[-1].endswith("otelgate stopped")
    assert any(f.path.name.endswith(".gz") for f in rotated_files(log_file))
