"""Which configuration paths differ between two configurations (never their values), for the
audit trail's record of a reload."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

MAX_PATHS = 50


def changed_paths(old: BaseModel, new: BaseModel, limit: int = MAX_PATHS) -> list[str]:
    """Dotted paths (``alerting.rules[2].for``) that were changed, added or removed, at most
    ``limit`` of them (then a last entry says how many more)."""
    found: list[str] = []
    _walk(old.model_dump(mode="json"), new.model_dump(mode="json"), "", found)
    if len(found) > limit:
        return [*found[:limit], f"... and {len(found) - limit} more"]
    return found


def _walk(old: Any, new: Any, path: str, found: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            child = f"{path}.{key}" if path else str(key)
            if key not in old or key not in new:
                found.append(child)
            else:
                _walk(old[key], new[key], child, found)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (before, after) in enumerate(zip(old, new, strict=True)):
            _walk(before, after, f"{path}[{index}]", found)
    elif old != new:
        found.append(path or "(root)")
