"""The embedded store: one SQLite file under the data directory (SLO minute buckets)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from gateway.store.config import StoreConfig
from gateway.store.sqlite import SqliteStore

__all__ = ["SqliteStore", "default_store_path", "open_store"]

DB_NAME = "otelgate.db"


def default_store_path(environ: Mapping[str, str] | None = None) -> Path:
    """``<OTELGATE_DATA_DIR or ./otelgate-data>/otelgate.db``."""
    env = os.environ if environ is None else environ
    return Path(env.get("OTELGATE_DATA_DIR") or "./otelgate-data") / DB_NAME


def open_store(config: StoreConfig, environ: Mapping[str, str] | None = None) -> SqliteStore:
    """Open (creating it and its directory if needed) the store ``config`` names."""
    path = Path(config.path) if config.path else default_store_path(environ)
    return SqliteStore(path)
