"""The files the gateway manages: its own log file and the file exporters' outputs, found
where they live (the root logger's handlers, the exporters), so nothing global is kept.
Anything with a rotation :meth:`~StatusSource.status` (the audit trail) can be one too."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from gateway.logfiles.handler import LogFileHandler
from gateway.logfiles.status import FileStatus
from gateway.logfiles.writer import RotatingFile


class StatusSource(Protocol):
    """A managed file as ``/health`` and the metrics see it."""

    def status(self) -> FileStatus:
        """The file's rotation status now."""
        ...


@dataclass(frozen=True, slots=True)
class ManagedFile:
    """A rotating file and who writes it (``logging``, ``exporter <id>`` or ``audit``)."""

    owner: str
    file: StatusSource


def managed_files(
    exporters: Iterable[tuple[str, object]],
    logger: logging.Logger | None = None,
    audit: StatusSource | None = None,
) -> list[ManagedFile]:
    """The gateway's log file (a :class:`LogFileHandler` on ``logger``, the root logger by
    default), every exporter with a ``log_file`` (a :class:`RotatingFile`) and the audit
    trail, when there is one."""
    root = logger if logger is not None else logging.getLogger()
    found = [ManagedFile("logging", h.file) for h in root.handlers if isinstance(h, LogFileHandler)]
    for name, exporter in exporters:
        file = getattr(exporter, "log_file", None)
        if isinstance(file, RotatingFile):
            found.append(ManagedFile(f"exporter {name}", file))
    if audit is not None:
        found.append(ManagedFile("audit", audit))
    return found
