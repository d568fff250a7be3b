"""Run by test_crash.py as a process it kills: writes ``<run>:<seq>`` lines to a rotating
file as fast as it can (tiny max_size, compression in the background) and, after each write
returned, reports ``seq`` in the report file. Usage: crash_writer.py PATH REPORT RUN."""

from __future__ import annotations

import os
import sys

from gateway.logfiles.config import RotationConfig
from gateway.logfiles.writer import RotatingFile


def main(path: str, report: str, run: str) -> None:
    config = RotationConfig(
        max_size=2048, daily_at=None, max_age=None, max_files=None, check_interval=0.01
    )
    writer = RotatingFile(path, config)
    writer.open()
    fd = os.open(report, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    seq = 0
    while True:
        writer.write(f"{run}:{seq}:".encode() + b"x" * (seq % 97) + b"\n")
        os.write(fd, f"{seq}\n".encode())
        seq += 1


if __name__ == "__main__":
    main(*sys.argv[1:4])
