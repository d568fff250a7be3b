"""The directories the gateway writes, whose filesystems ``/health`` checks for free space."""

from __future__ import annotations

import os
from collections.abc import Mapping

from exporters.file import FileExporterConfig
from gateway.config.model import Config


def data_paths(config: Config, environ: Mapping[str, str] | None = None) -> list[str]:
    """Directories the gateway writes: file exporters' directories, configured spool
    directories, the store's directory, ``logging.file``'s directory, and the data directory
    (``OTELGATE_DATA_DIR`` or ``./otelgate-data``) when it exists."""
    env = os.environ if environ is None else environ
    found: list[str] = []
    for exporter in config.exporters.values():
        if isinstance(exporter, FileExporterConfig):
            found.append(os.path.dirname(exporter.path) or ".")
        directory = getattr(getattr(exporter, "sending_queue", None), "directory", None)
        if isinstance(directory, str):
            found.append(directory)
    store = getattr(config, "store", None)
    store_path = getattr(store, "path", None)
    if getattr(store, "enabled", False) and isinstance(store_path, str):
        found.append(os.path.dirname(store_path) or ".")
    log_file = getattr(getattr(config, "logging", None), "file", None)
    if isinstance(log_file, str):
        found.append(os.path.dirname(log_file) or ".")
    data_dir = env.get("OTELGATE_DATA_DIR") or "./otelgate-data"
    if os.path.isdir(data_dir):
        found.append(data_dir)
    return list(dict.fromkeys(found))
