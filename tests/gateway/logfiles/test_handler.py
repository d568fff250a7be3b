"""The gateway's own log file: records go to a rotating file as well as stderr
(configure_logging with ``logging.file``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.cli import configure_logging
from gateway.config.model import LoggingConfig
from gateway.logfiles.handler import LogFileHandler
from gateway.logfiles.naming import rotated_files
from tests.support.rotated_files import all_lines


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if isinstance(handler, LogFileHandler):
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_logging_file_rotates_and_keeps_stderr(
    tmp_path: Path, restore_root: None, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "logs" / "otelgate.log"
    settings = LoggingConfig.model_validate(
        {"file": str(path), "format": "json", "rotation": {"max_size": 400, "compress": False}}
    )
    configure_logging(settings)
    log = logging.getLogger("otelgate.test")
    for i in range(10):
        log.info("message %d", i)
    stderr = capsys.readouterr().err.splitlines()
    assert len(stderr) == 10
    assert len(rotated_files(path)) >= 2
    lines = [line.decode() for line in all_lines(path)]
    assert lines == stderr  # the same formatted records, in order
    # Configuring again closes the previous file handler; without `file` there is none.
    configure_logging(LoggingConfig())
    assert not [h for h in logging.getLogger().handlers if isinstance(h, LogFileHandler)]


def test_a_log_file_that_cannot_be_opened_stops_with_a_message(
    tmp_path: Path, restore_root: None
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit, match=r"cannot open logging\.file"):
        configure_logging(LoggingConfig(file=str(blocker / "x.log")))


def test_a_log_file_another_writer_holds_stops_with_a_message(
    tmp_path: Path, restore_root: None
) -> None:
    path = tmp_path / "taken.log"
    other = LogFileHandler(path, background=False)
    try:
        with pytest.raises(SystemExit, match=r"is in use by another writer"):
            configure_logging(LoggingConfig(file=str(path)))
    finally:
        other.close()
