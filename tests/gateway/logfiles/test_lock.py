"""One writer per file: a second RotatingFile on the same path, in this process or another,
fails to open with an error naming the path and its lock, instead of sharing the file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.logfiles.writer import RotatingFile

ROOT = Path(__file__).resolve().parents[3]


def _in_use(path: Path) -> str:
    lock = path.with_name(f".{path.name}.lock")
    return re.escape(f"{path} is in use by another writer (lock {lock})")


def test_a_second_writer_in_this_process_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "o.log"
    first = RotatingFile(path, background=False)
    first.open()
    second = RotatingFile(path, background=False)
    with pytest.raises(OSError, match=_in_use(path)):
        second.open()
    first.write(b"first\n")
    first.close()  # releases the lock: now the second may write
    second.open()
    second.write(b"second\n")
    with pytest.raises(OSError, match=_in_use(path)):
        first.write(b"reopened lazily, but the file has a writer\n")
    second.close()
    assert path.read_bytes() == b"first\nsecond\n"


def test_a_second_process_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "o.log"
    first = RotatingFile(path, background=False)
    first.open()
    code = (
        "import sys\n"
        "from gateway.logfiles.writer import RotatingFile\n"
        "RotatingFile(sys.argv[1], background=False).open()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    first.close()
    assert done.returncode != 0
    assert re.search(_in_use(path), done.stderr), done.stderr
