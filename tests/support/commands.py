"""Console scripts of the environment running the tests (a venv need not be on PATH)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def script(name: str) -> str:
    """The ``name`` script next to this interpreter, else the one on PATH."""
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed in this environment")
    return found
