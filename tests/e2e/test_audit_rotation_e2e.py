"""The audit trail of a real gateway rotates, gzips what it rotated, is listed with the other
managed files in ``/health`` and the ``otelgate_log_file_*`` metrics, is read back by
``GET /audit`` from its ``.gz`` members, and ``otelgate audit verify`` accepts it."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import forward_config
from tests.support.gateway_process import GatewayProcess, otelgate_command
from tests.support.otlp_sink import OtlpSink

ADMIN = "admin-token-audit-rotation-0123456789"


def test_rotated_audit_files_are_gzipped_listed_and_verifiable(
    start_gateway: Callable[..., GatewayProcess], sink: OtlpSink, tmp_path: Path
) -> None:
    trail = tmp_path / "audit" / "audit.jsonl"
    config = forward_config(sink)
    config["auth"] = {"tokens": [{"name": "root", "token": ADMIN, "scopes": ["read", "admin"]}]}
    config["audit"] = {"path": str(trail), "max_size": 4096, "check_interval": "200ms"}
    gateway = start_gateway(config)
    admin = httpx.Client(base_url=gateway.admin_url, timeout=10)
    headers = {"authorization": f"Bearer {ADMIN}"}
    for i in range(40):  # each refused request is one auth.failure entry (~250 bytes)
        bad = {"authorization": f"Bearer wrong-{i:04d}-0123456789abcdef"}
        assert admin.get("/audit", headers=bad).status_code == 401
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if len(list(trail.parent.glob("audit.*.jsonl.gz"))) >= 2:
            break
        time.sleep(0.2)
    assert len(list(trail.parent.glob("audit.*.jsonl.gz"))) >= 2, gateway.logs()

    health = admin.get("/health", headers=headers).json()
    audit = next(f for f in health["log_files"] if f["owner"] == "audit")
    assert audit["path"] == str(trail) and audit["rotations"] >= 2
    assert audit["status"] in ("healthy", "warning") and audit["rotated_files"] >= 2
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(admin.get("/metrics", headers=headers).text)
        for s in family.samples
    }
    labels = (("owner", "audit"), ("path", str(trail)), ("reason", "size"))
    assert samples[("otelgate_log_file_rotations_total", labels)] >= 2
    assert samples[("otelgate_audit_entries_total", (("action", "auth.failure"),))] >= 40

    page = admin.get("/audit", headers=headers, params={"limit": 1000}).json()
    seqs = [e["seq"] for e in page["entries"]]
    assert seqs == list(range(seqs[0], 0, -1))  # every entry, newest first, down to seq 1
    assert any(e["file"].endswith(".jsonl.gz") for e in page["entries"])

    gateway.stop()
    verified = subprocess.run(
        [*otelgate_command(), "audit", "verify", "--head", page["head"]["hash"], str(trail.parent)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("OK: ")
