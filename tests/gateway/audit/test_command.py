"""``otelgate audit verify`` as a user runs it: the verdict line and the exit status."""

from __future__ import annotations

import builtins
import errno
import gzip
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.audit import command
from gateway.audit.config import AuditConfig
from gateway.cli import main
from tests.gateway.audit.helpers import KEY, lines, rewrite, write_trail
from tests.support.commands import script


def otelgate(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [script("otelgate"), "audit", "verify", *map(str, args)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_an_intact_and_a_tampered_trail(tmp_path: Path) -> None:
    write_trail(tmp_path, 40, max_size=2500)
    ok = otelgate(tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK: 45 entries in 4 files, head ")
    head = ok.stdout.split("head ")[1].split()[0]
    active = tmp_path / "audit.jsonl"
    found = lines(active)
    found[2] = found[2].replace(b'"i":', b'"i":1')
    rewrite(active, found)
    broken = otelgate(tmp_path)
    assert broken.returncode == 1
    assert broken.stdout.startswith(f"BROKEN: {active}:4: bad hash link: prev does not match")
    rewrite(active, lines(active)[:2])  # the tail removed: only the anchor tells
    assert otelgate(tmp_path).returncode == 0
    anchored = otelgate(tmp_path, "--head", head)
    assert anchored.returncode == 1 and f"{active}:2: head anchor {head}" in anchored.stdout


def test_keys_and_usage_errors(tmp_path: Path) -> None:
    write_trail(tmp_path / "trail", 3, key=KEY)
    key = tmp_path / "key"
    key.write_bytes(KEY + b"\n")
    assert otelgate(tmp_path / "trail", "--key-file", key).returncode == 0
    unkeyed = otelgate(tmp_path / "trail")
    assert unkeyed.returncode == 2 and unkeyed.stdout.startswith("UNVERIFIED: ")
    assert "give the key (--key-file)" in unkeyed.stdout
    missing = otelgate(tmp_path / "trail", "--key-file", tmp_path / "nokey")
    assert missing.returncode == 2 and "No such file" in missing.stderr
    wrong = tmp_path / "wrong"
    wrong.write_bytes(b"w" * 32)
    assert otelgate(tmp_path / "trail", "--key-file", wrong).returncode == 1
    nothing = otelgate(tmp_path / "nothing.jsonl")
    assert nothing.returncode == 2 and "no such file" in nothing.stderr
    assert otelgate().returncode == 2


def test_the_trail_of_a_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = tmp_path / "otelgate.yaml"
    config_path.write_text(yaml.safe_dump({
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file"]}}},
        "receivers": {"otlp": {"protocols": {"http": None}}},
        "exporters": {"file": {"path": str(tmp_path / "traces.jsonl")}},
    }))  # fmt: skip
    monkeypatch.delenv("OTELGATE_CONFIG", raising=False)
    assert main(["audit", "verify", "-c", str(config_path)]) == 2
    assert "has no enabled audit section" in capsys.readouterr().err
    # with an audit section (the configuration model's own once it has one)
    write_trail(tmp_path / "audit", 4, key=KEY)
    key = tmp_path / "key"
    key.write_bytes(KEY)
    audit = AuditConfig.model_validate(
        {"path": str(tmp_path / "audit" / "audit.jsonl"), "hmac_key_file": str(key)}
    )
    monkeypatch.setattr(command, "_audit_config", lambda path: audit)
    assert main(["audit", "verify", "-c", str(config_path)]) == 0
    assert capsys.readouterr().out.startswith("OK: 6 entries in 1 file, head ")


def test_a_trail_of_plain_and_gzipped_files(tmp_path: Path) -> None:
    from gateway.audit.files import rotated_files
    from tests.gateway.audit.helpers import Clock, make_trail

    clock = Clock()
    trail = make_trail(
        tmp_path / "audit.jsonl", clock, daily_at="00:00", compress=True, background=False
    )
    trail.open()
    for _ in range(3):
        for i in range(30):
            trail.record("config.reload", "ops", {"i": i})
        clock.advance(86400)
        trail.maintain()  # rotates the day's file and gzips it
    trail.record("alert.ack", "ops")
    clock.advance(86400)
    trail.record("alert.ack", "ops")  # rotated, not compressed yet
    trail.close()
    names = [p.name for _, p in rotated_files(trail.path)]
    assert sum(n.endswith(".gz") for n in names) == 3 and not names[-1].endswith(".gz")
    ok = otelgate(tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("OK: ") and " in 5 files, head " in ok.stdout
    member = tmp_path / names[1]
    data = bytearray(member.read_bytes())
    data[len(data) // 2] ^= 0x01  # one byte inside the compressed stream
    member.write_bytes(bytes(data))
    broken = otelgate(tmp_path)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert broken.stdout.startswith(f"BROKEN: {member}:")


@pytest.mark.parametrize("compressed", [False, True])
def test_a_file_that_cannot_be_read_is_not_called_bad_gzip(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    compressed: bool,
) -> None:
    write_trail(tmp_path, 40, max_size=2500)
    rotated = sorted(tmp_path.glob("audit.0*.jsonl"))[1]
    if compressed:
        packed = rotated.with_name(rotated.name + ".gz")
        packed.write_bytes(gzip.compress(rotated.read_bytes()))
        rotated.unlink()
        rotated = packed
    real_open = builtins.open

    def denied(file: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, str | Path) and Path(file) == rotated:
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", denied)  # as root, chmod 000 would not stop a read
    assert main(["audit", "verify", str(tmp_path)]) == 2  # not checked, not "broken"
    out, err = capsys.readouterr()
    assert "gzip" not in out + err
    assert f"{rotated}: cannot read: Permission denied" in err
