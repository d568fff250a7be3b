"""The audit trail of a real gateway: operator actions over the admin API, refused callers,
reloads (HTTP and SIGHUP) and token use end up as a chain that ``otelgate audit verify``
accepts, that ``GET /audit`` pages through for admins only, and that breaks when edited."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from gateway.otlp.batch import Signal
from tests.e2e.conftest import forward_config
from tests.support.gateway_process import GatewayProcess, otelgate_command
from tests.support.otlp_samples import sample_request
from tests.support.otlp_sink import OtlpSink

SENDER = "sender-token-audit-0123456789abcdef"
OPERATOR = "operator-token-audit-0123456789abcdef"
READER = "reader-token-audit-0123456789abcdef"


def verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*otelgate_command(), "audit", "verify", *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_operator_actions_are_chained_and_verifiable(
    start_gateway: Callable[..., GatewayProcess], sink: OtlpSink, tmp_path: Path
):
    trail = tmp_path / "audit" / "audit.jsonl"
    key = tmp_path / "audit.key"
    key.write_bytes(b"k" * 32)
    key.chmod(0o600)
    config = forward_config(sink)
    config["auth"] = {
        "tokens": [
            {"name": "checkout", "token": SENDER, "scopes": ["ingest"]},
            {"name": "alice", "token": OPERATOR, "scopes": ["read", "admin"]},
            {"name": "grafana", "token": READER, "scopes": ["read"]},
        ]
    }
    config["audit"] = {"path": str(trail), "hmac_key_file": str(key)}
    gateway = start_gateway(config)
    admin = httpx.Client(base_url=gateway.admin_url, timeout=10)
    alice = {"authorization": f"Bearer {OPERATOR}"}
    body = sample_request(Signal.TRACES, 3).SerializeToString()
    protobuf = {"content-type": "application/x-protobuf"}
    url = f"{gateway.http_endpoint}/v1/traces"
    for token, status in ((SENDER, 200), ("wrong-0123456789abcdef", 401)):
        headers = {**protobuf, "authorization": f"Bearer {token}"}
        assert httpx.post(url, content=body, headers=headers).status_code == status
    new_silence = {
        "matchers": ['alertname="HighErrorRate"'],
        "created_by": "alice",
        "comment": "deploy",
        "duration": 3600,
    }
    silence = admin.post("/silences", headers=alice, json=new_silence)
    assert silence.status_code in (200, 201), silence.text
    silence_id = silence.json()["id"]
    assert admin.delete(f"/silences/{silence_id}", headers=alice).status_code in (200, 204)
    assert admin.post("/errors/nope/resolve", headers=alice).status_code == 404
    assert admin.post("/-/reload", headers=alice).status_code == 200
    assert gateway.proc is not None
    gateway.proc.send_signal(signal.SIGHUP)
    # Readers may not page through the trail; admins may.
    assert admin.get("/audit", headers={"authorization": f"Bearer {READER}"}).status_code == 403
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        page = admin.get("/audit", headers=alice, params={"limit": 100}).json()
        actions = [e["action"] for e in page["entries"]]
        if actions.count("config.reload") == 2:
            break
        time.sleep(0.2)
    by_action = {e["action"]: e for e in reversed(page["entries"])}
    assert by_action["silence.create"]["actor"] == "alice"
    assert by_action["silence.create"]["details"]["id"] == silence_id
    assert by_action["silence.create"]["details"]["request"]["comment"] == "deploy"
    assert by_action["silence.expire"]["details"]["silence_id"] == silence_id
    assert by_action["error_group.status"]["details"] == {
        "group_id": "nope", "to": "resolved", "status": 404
    }  # fmt: skip
    reloads = [e for e in page["entries"] if e["action"] == "config.reload"]
    assert {(e["actor"], e["details"]["source"]) for e in reloads} == {
        ("alice", "http"), (None, "sighup")
    }  # fmt: skip
    failures = [e for e in page["entries"] if e["action"] == "auth.failure"]
    assert {(e["actor"], e["details"]["reason"]) for e in failures} == {
        (None, "unauthenticated"), ("grafana", "permission_denied")
    }  # fmt: skip
    head = page["head"]["hash"]
    gateway.stop()  # writes the per-minute token use and audit.stop
    text = trail.read_text()
    assert '"auth.token_use"' in text and '"checkout"' in text
    for token in (SENDER, OPERATOR, READER):
        assert token not in text and token not in gateway.logs()

    assert verify("--key-file", str(key), "--head", head, str(trail.parent)).returncode == 0
    # An edited copy breaks at the first entry after the edit, named by file and line.
    lines = text.splitlines(keepends=True)
    edited = next(i for i, line in enumerate(lines) if '"silence.create"' in line)
    lines[edited] = lines[edited].replace('"alice"', '"mallory"')
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "audit.jsonl").write_text("".join(lines))
    result = verify("--key-file", str(key), str(copy / "audit.jsonl"))
    assert result.returncode == 1
    assert f"audit.jsonl:{edited + 2}:" in result.stdout + result.stderr
