"""Helpers for the gateway's background tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


async def cancel_and_wait(tasks: asyncio.Task[None] | Iterable[asyncio.Task[None]] | None) -> None:
    """Cancel task(s) and wait until they have finished; their errors are not raised."""
    if tasks is None:
        return
    pending = [tasks] if isinstance(tasks, asyncio.Task) else list(tasks)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
