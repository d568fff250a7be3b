"""The demo's services: frontend -> checkout -> payments, small FastAPI apps.

Each process serves one of them, chosen by ``OTELGATE_DEMO_SERVICE``; it runs under
``opentelemetry-instrument`` (with otelgate's distro), so its traces, metrics and logs reach
the gateway like any instrumented service's would. Latencies are realistic-ish and a few
percent of payments fail, so health, error and latency views have something to show.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random

import httpx
from fastapi import FastAPI, HTTPException

from instrumentation import RequestLoggingMiddleware, use_root_logging_for_uvicorn

SERVICE = os.environ.get("OTELGATE_DEMO_SERVICE", "frontend")
DOWNSTREAM = os.environ.get("OTELGATE_DEMO_DOWNSTREAM", "")
FAILURE_RATE = float(os.environ.get("OTELGATE_DEMO_FAILURE_RATE", "0.03"))

log = logging.getLogger(f"demo.{SERVICE}")
use_root_logging_for_uvicorn()
app = FastAPI(title=f"otelgate demo: {SERVICE}")
app.add_middleware(RequestLoggingMiddleware)
_client = httpx.AsyncClient(timeout=5.0)


async def _pause(low_ms: float, high_ms: float, slow_ratio: float = 0.02) -> None:
    """Sleep like real work: usually between low and high, sometimes 5x slower."""
    delay = random.uniform(low_ms, high_ms) / 1000
    if random.random() < slow_ratio:
        delay *= 5
    await asyncio.sleep(delay)


async def _call(path: str, payload: dict[str, object]) -> dict[str, object]:
    response = await _client.post(f"{DOWNSTREAM}{path}", json=payload)
    if response.status_code >= 400:
        log.warning("downstream %s answered %d", path, response.status_code)
        raise HTTPException(status_code=502, detail=f"{path} failed")
    return dict(response.json())


@app.get("/health")
async def health() -> dict[str, str]:
    """Liveness, for the demo runner."""
    return {"status": "ok", "service": SERVICE}


@app.get("/shop")
async def shop(item: str = "widget") -> dict[str, object]:
    """frontend: renders a page, then checks out through the checkout service."""
    await _pause(3, 15)
    log.info("shopping", extra={"item": item})
    order = await _call("/checkout", {"item": item, "quantity": random.randint(1, 3)})
    return {"page": "thanks", "order": order}


@app.post("/checkout")
async def checkout(body: dict[str, object]) -> dict[str, object]:
    """checkout: reserves stock, then charges through the payments service."""
    await _pause(5, 30)
    quantity = int(str(body.get("quantity", 1)))
    charge = await _call("/charge", {"amount": 9.99 * quantity, "card_number": "4111111111111111"})
    log.info("order placed", extra={"item": body.get("item"), "quantity": quantity})
    return {"status": "placed", "charge": charge}


def _card_network(amount: object) -> None:
    """The (pretend) card network timing out."""
    raise TimeoutError(
        f"card network gave no answer for {amount} within {random.randint(2000, 3000)} ms"
    )


@app.post("/charge")
async def charge(body: dict[str, object]) -> dict[str, object]:
    """payments: talks to a (pretend) card network; fails a few percent of the time."""
    await _pause(20, 80, slow_ratio=0.05)
    if random.random() < FAILURE_RATE:
        try:
            _card_network(body.get("amount"))
        except TimeoutError:  # logged with its stack trace: an error group in /errors
            log.exception("card network declined the request", extra={"amount": body.get("amount")})
            raise HTTPException(status_code=500, detail="card network error") from None
    return {"charged": body.get("amount"), "currency": "EUR"}
