"""The demo's traffic: ``GET /shop`` on the frontend about ``rate`` times a second.

``otelgate demo`` runs it in-process; the compose stack runs it as its own service:

    python -m gateway.demo.traffic --url http://frontend:8000 --rate 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx


@dataclass
class Traffic:
    """What the traffic driver has done so far."""

    sent: int = 0
    failed: int = 0


async def drive_traffic(url: str, rate: float, stop: asyncio.Event, traffic: Traffic) -> None:
    """GET /shop about ``rate`` times a second (concurrently, like real users) until stopped."""
    items = ("widget", "gadget", "gizmo", "doohickey")
    pending: set[asyncio.Task[None]] = set()

    async def one(client: httpx.AsyncClient, item: str) -> None:
        try:
            response = await client.get(f"{url}/shop", params={"item": item})
            if response.status_code >= 400:
                traffic.failed += 1
        except httpx.HTTPError:
            traffic.failed += 1

    async with httpx.AsyncClient(timeout=10.0) as client:
        while not stop.is_set():
            task = asyncio.create_task(one(client, items[traffic.sent % len(items)]))
            pending.add(task)
            task.add_done_callback(pending.discard)
            traffic.sent += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0 / rate)
        if pending:
            await asyncio.wait(pending, timeout=10)


async def wait_for(url: str, timeout: float) -> bool:
    """True once ``url`` answers at all (any status), False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            try:
                await client.get(url)
                return True
            except httpx.HTTPError:
                await asyncio.sleep(1.0)
    return False


async def run(
    url: str, rate: float, duration: float | None, report_every: float, wait: float
) -> int:
    """Drive traffic until SIGTERM/SIGINT or ``duration``, with a progress line now and then;
    1 when ``url`` does not answer within ``wait`` seconds of the start."""
    if not await wait_for(f"{url}/shop", timeout=wait):
        print(f"traffic: {url} did not answer within {wait:g} s", file=sys.stderr, flush=True)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if duration is not None:
        loop.call_later(duration, stop.set)
    traffic = Traffic()
    driver = asyncio.create_task(drive_traffic(url, rate, stop, traffic))
    while not driver.done():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(driver), report_every)
        print(f"traffic: {traffic.sent} requests to {url}, {traffic.failed} failed", flush=True)
    await driver
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gateway.demo.traffic``."""
    parser = argparse.ArgumentParser(prog="python -m gateway.demo.traffic", description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the frontend's base URL")
    parser.add_argument("--rate", type=float, default=5.0, help="requests per second")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--report-every", type=float, default=30.0, help="seconds between lines")
    parser.add_argument(
        "--wait", type=float, default=120.0, help="seconds to wait for the frontend to answer"
    )
    args = parser.parse_args(argv)
    if args.rate <= 0:
        parser.error("--rate must be above 0")
    url = args.url.rstrip("/")
    return asyncio.run(run(url, args.rate, args.duration, args.report_every, args.wait))


if __name__ == "__main__":
    sys.exit(main())
