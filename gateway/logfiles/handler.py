"""The gateway's own log file (``logging.file``): a :class:`logging.Handler` on a
:class:`~gateway.logfiles.writer.RotatingFile`, beside the stderr handler.

Each record is one ``write`` of its formatted text and a newline (a text record with a
traceback spans several lines; ``format: json`` keeps every record on one line). What goes
wrong with the file itself is told on stderr directly (:mod:`gateway.logfiles.notice`), never
through logging: records lost to a full disk as one line a minute with their count, the
file's own problems at most once a minute.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from gateway.logfiles.config import RotationConfig
from gateway.logfiles.notice import Notices, Throttled, to_stderr
from gateway.logfiles.writer import RotatingFile


def _records(count: int) -> str:
    return f"{count} record{'' if count == 1 else 's'} lost since the last report"


class LogFileHandler(logging.Handler):
    """Writes formatted records to a rotating file. A record that can't be written is
    counted in :attr:`lost` and reported on stderr once a minute (the file's status is
    critical meanwhile), never a traceback per record."""

    def __init__(
        self,
        path: str | Path,
        rotation: RotationConfig | None = None,
        *,
        now: Callable[[], float] = time.time,
        background: bool = True,
    ) -> None:
        super().__init__()
        self.lost = Throttled()
        self.file = RotatingFile(path, rotation, now=now, background=background, report=Notices())
        self.file.open()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            self.file.write(text.encode("utf-8", "backslashreplace") + b"\n")
        except Exception as exc:
            count = self.lost.count()
            if count is not None:
                to_stderr(f"cannot write log file {self.file.path}: {exc}; {_records(count)}")

    def close(self) -> None:
        self.file.close()
        if count := self.lost.flush():
            to_stderr(f"log file {self.file.path}: {_records(count)}")
        super().close()


def close_log_files(logger: logging.Logger) -> None:
    """Close and remove ``logger``'s :class:`LogFileHandler` (a previous configuration's)."""
    for handler in list(logger.handlers):
        if isinstance(handler, LogFileHandler):
            logger.removeHandler(handler)
            handler.close()


def log_file_handler(
    path: str, rotation: RotationConfig, formatter: logging.Formatter | None
) -> LogFileHandler:
    """A handler for ``logging.file``, formatting like ``formatter`` (the stderr one's)."""
    handler = LogFileHandler(path, rotation)
    handler.setFormatter(formatter)
    return handler
