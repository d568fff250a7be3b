"""A writer killed with SIGKILL at random moments during heavy rotation and background
compression loses no line it reported written: after each restart, every run's lines are
present exactly once and in order, at most one unreported line more (written, killed before
reporting), and the file is clean (a torn line was cut, leftovers removed)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.logfiles.config import RotationConfig
from gateway.logfiles.naming import rotated_files
from gateway.logfiles.writer import RotatingFile
from tests.support.rotated_files import all_lines

ROOT = Path(__file__).resolve().parents[3]
WRITER = Path(__file__).with_name("crash_writer.py")
RUNS = 12

pytestmark = pytest.mark.timeout(120)


def _reported(report: Path) -> int:
    """The last sequence number the run reported (-1: none)."""
    lines = report.read_bytes().split(b"\n")[:-1] if report.exists() else []
    return int(lines[-1]) if lines else -1


def _kill_at_random(path: Path, report: Path, run: int, rng: random.Random) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, str(WRITER), str(path), str(report), str(run)]
    proc = subprocess.Popen(cmd, env=env, cwd=path.parent)
    deadline = time.monotonic() + 30
    while _reported(report) < 0 and time.monotonic() < deadline:  # started writing
        assert proc.poll() is None, "the writer died on its own"
        time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 0.3))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def test_sigkill_during_rotation_loses_no_reported_line(tmp_path: Path) -> None:
    rng = random.Random(1605)
    path = tmp_path / "crash.log"
    reported: list[int] = []
    for run in range(RUNS):
        report = tmp_path / f"report-{run}"
        _kill_at_random(path, report, run, rng)
        reported.append(_reported(report))
    # The next start repairs: torn line cut, interrupted compressions cleaned up.
    config = RotationConfig(max_size=2048, daily_at=None, max_age=None, max_files=None)
    writer = RotatingFile(path, config, background=False)
    writer.open()
    writer.maintain()
    writer.close()
    assert not [p.name for p in tmp_path.iterdir() if ".tmp" in p.name]
    assert all(f.compressed for f in rotated_files(path))
    assert len(rotated_files(path)) > RUNS  # the kills did land during heavy rotation
    seen: dict[int, list[int]] = {}
    for line in all_lines(path):
        run_text, seq, filler = line.split(b":")
        assert filler == b"x" * (int(seq) % 97), line  # whole lines only
        seen.setdefault(int(run_text), []).append(int(seq))
    assert list(seen) == list(range(RUNS))  # runs in order
    for number, last in enumerate(reported):
        seqs = seen[number]
        assert seqs == list(range(len(seqs))), number  # exactly once, in order
        assert last <= len(seqs) - 1 <= last + 1, number  # reported ones all there
