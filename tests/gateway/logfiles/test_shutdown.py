"""Exit never hangs on the log file: ``logging.shutdown()`` closes each handler holding its
lock, and the file's maintenance thread must not wait for that lock to report a problem. Its
own problems go straight to stderr, rate-limited, and so do records that could not be
written (one line a minute with the count, not a traceback per record)."""

from __future__ import annotations

import errno
import logging
import threading
import time
from pathlib import Path

import pytest

from gateway.logfiles.config import RotationConfig
from gateway.logfiles.handler import LogFileHandler


def test_close_under_the_handler_lock_returns_while_a_problem_is_reported(
    tmp_path: Path,
) -> None:
    handler = LogFileHandler(tmp_path / "h.log", RotationConfig(check_interval=3600))
    root = logging.getLogger()
    root.addHandler(handler)  # otelgate.logfiles records reach this handler
    closed = threading.Event()

    def shutdown_like_logging() -> None:  # logging.shutdown(): acquire, flush, close
        handler.acquire()
        try:
            handler.file.tracker.failed("rotate", OSError(errno.EIO, "injected"))
            handler.file._worker.wake()  # type: ignore[union-attr]
            time.sleep(0.5)  # the maintenance pass reports the new problem meanwhile
            handler.close()
        finally:
            handler.release()
        closed.set()

    thread = threading.Thread(target=shutdown_like_logging, daemon=True)
    try:
        thread.start()
        thread.join(15)
    finally:
        root.removeHandler(handler)
    assert closed.is_set(), "close() hung: the maintenance thread waited for the handler lock"


def _failing_handler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LogFileHandler:
    handler = LogFileHandler(tmp_path / "full.log", background=False)

    def full(line: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(handler.file, "write", full)
    return handler


def test_a_full_disk_prints_one_line_not_a_traceback_per_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = _failing_handler(tmp_path, monkeypatch)
    for i in range(100):
        handler.emit(logging.makeLogRecord({"msg": f"lost {i}"}))
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"log file {tmp_path / 'full.log'}" in err and "No space left on device" in err
    assert "1 record lost since the last report" in err
    handler.close()


def test_the_count_of_lost_records_is_reported_once_a_minute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = _failing_handler(tmp_path, monkeypatch)
    now = [1000.0]
    monkeypatch.setattr(handler.lost, "clock", lambda: now[0])
    record = logging.makeLogRecord({"msg": "lost"})
    handler.emit(record)
    for _ in range(40):
        now[0] += 1
        handler.emit(record)
    assert "1 record lost" in capsys.readouterr().err  # 40 more in the minute: counted
    now[0] += 20  # a minute after the first line
    handler.emit(record)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "41 records lost since the last report" in err
    handler.emit(record)
    handler.close()  # the count not yet reported is not forgotten
    assert "1 record lost since the last report" in capsys.readouterr().err
