"""The admin listener: ``/metrics`` and the liveness/readiness probes.

``/metrics`` uses prometheus_client's own content negotiation (``choose_encoder``), so
Prometheus gets OpenMetrics when it asks for it and the classic text format otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from starlette.responses import Response

from gateway import __version__


@dataclass(slots=True)
class Readiness:
    """Whether the gateway takes data now, and if not, why."""

    ready: bool
    state: str
    reasons: list[str] = field(default_factory=list)


def create_admin_app(
    registry: CollectorRegistry,
    readiness: Callable[[], Readiness],
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """The admin FastAPI application, with the routes other components contribute."""
    app = FastAPI(title="otelgate admin", version=__version__)
    for router in routers:
        app.include_router(router)

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(registry), media_type=content_type)

    @app.get("/health/live", summary="Liveness: the process is up and serving")
    def live() -> dict[str, str]:
        return {"status": "alive", "version": __version__}

    @app.get("/health/ready", summary="Readiness: every pipeline can accept data")
    def ready() -> JSONResponse:
        state = readiness()
        body = {"status": "ready" if state.ready else "not_ready", "state": state.state}
        if state.reasons:
            body["reasons"] = state.reasons  # type: ignore[assignment]
        return JSONResponse(body, status_code=200 if state.ready else 503)

    return app
