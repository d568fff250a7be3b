"""A small "orders" service showing otelgate's instrumentation.

Run it under the wrapper (traces, metrics and logs over OTLP, JSON logs on stdout)::

    OTEL_SERVICE_NAME=orders opentelemetry-instrument \\
        uvicorn examples.orders_app:app --host 127.0.0.1 --port 8000

Set ``OTELGATE_LOG_BODIES=true`` to log (masked) request and response bodies.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from instrumentation import RequestLoggingMiddleware, use_root_logging_for_uvicorn
from instrumentation.masking import mask_data
from instrumentation.middleware import LOG_BODIES_ENV, env_flag

log = logging.getLogger("orders")

# uvicorn configured its loggers before importing this module: route them through the
# root logger so stdout is JSON only (the middleware replaces uvicorn's access log).
use_root_logging_for_uvicorn()

app = FastAPI(title="orders")
app.add_middleware(RequestLoggingMiddleware)

_ORDERS: dict[int, dict[str, Any]] = {
    1: {"id": 1, "item": "widget", "quantity": 2},
    2: {"id": 2, "item": "gadget", "quantity": 1},
}


class OrderIn(BaseModel):
    """A new order; password, card number and e-mail are there to exercise masking."""

    item: str
    quantity: int = 1
    email: str | None = None
    password: str | None = None
    card_number: str | None = None


@app.get("/health")
async def health() -> dict[str, str]:
    """Liveness."""
    return {"status": "ok"}


@app.get("/orders/{order_id}")
async def get_order(order_id: int) -> dict[str, Any]:
    """One order by id (404 when unknown)."""
    order = _ORDERS.get(order_id)
    log.info("order looked up", extra={"order_id": order_id, "found": order is not None})
    if order is None:
        raise HTTPException(status_code=404, detail="order not found")
    return order


@app.post("/orders", status_code=201)
async def create_order(order: OrderIn) -> dict[str, Any]:
    """Create an order; the response never echoes the secrets."""
    order_id = max(_ORDERS) + 1
    _ORDERS[order_id] = {"id": order_id, "item": order.item, "quantity": order.quantity}
    extra: dict[str, Any] = {"order_id": order_id, "item": order.item}
    if env_flag(LOG_BODIES_ENV):
        extra["order"] = mask_data(order.model_dump())
    log.info("order created", extra=extra)
    return _ORDERS[order_id]


@app.get("/boom")
async def boom() -> None:
    """Always fails: shows error spans, the ERROR log and the 500."""
    log.info("about to fail")
    raise RuntimeError("boom: the order service exploded")
