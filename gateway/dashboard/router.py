"""The dashboard's routes: its static files, the login form, and every page's module.

Pages are server-rendered (Jinja2, autoescaped) and carry their live parts in ``data-live``
regions, which ``dashboard.js`` re-fetches every ``dashboard.refresh_interval``; who may see
them is decided by the admin access table (``gateway.security.access``).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request
from starlette.responses import RedirectResponse, Response

from gateway import __version__
from gateway.dashboard import (
    alerts_page,
    errors_page,
    logs_page,
    overview,
    service_page,
    trace_page,
)
from gateway.dashboard.render import PAGE_HEADERS, page
from gateway.dashboard.sources import DashboardSources
from gateway.errors import RefusedError
from gateway.security.sessions import cleared_cookie, session_cookie

STATIC_TYPES = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "logs.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
MAX_LOGIN_BODY = 16 * 1024


@cache
def _static(name: str) -> bytes:
    return (resources.files("gateway.dashboard") / "static" / name).read_bytes()


def _local(target: str) -> str:
    """``target`` if it is a path on this gateway (not ``//host`` or a URL), else ``/``."""
    ok = target.startswith("/") and not target.startswith("//") and "\\" not in target
    return target if ok else "/"


def dashboard_router(sources: DashboardSources) -> APIRouter:
    """Every dashboard route, for ``Gateway.admin_routers``."""
    router = APIRouter(include_in_schema=False)

    @router.get("/ui/static/{path:path}")
    def static(path: str) -> Response:
        kind = STATIC_TYPES.get(path)
        if kind is None:
            raise HTTPException(404, "no such file")
        headers = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
        return Response(_static(path), media_type=kind, headers={**headers, "ETag": __version__})

    @router.get("/ui/login")
    def login_form(request: Request, next: str = "/") -> Response:
        if sources.auth is None or not sources.auth.enabled:
            return RedirectResponse(_local(next), status_code=303)
        return page(request, "login.html", title="Log in", section="", refresh=0,
                    next=_local(next), error=None)  # fmt: skip

    @router.post("/ui/login")
    async def login(request: Request) -> Response:
        body = await request.body()
        form = parse_qs(body[:MAX_LOGIN_BODY].decode("utf-8", "replace"))
        target = _local(form.get("next", ["/"])[0])
        if sources.auth is None or not sources.auth.enabled:
            return RedirectResponse(target, status_code=303)
        token = form.get("token", [""])[0].strip()
        client = request.client
        try:
            sources.auth.authenticate(
                f"Bearer {token}", None, scope="read", transport="admin",
                peer=f"{client.host}:{client.port}" if client else None,
            )  # fmt: skip
        except RefusedError as exc:
            return page(request, "login.html", title="Log in", section="", refresh=0,
                        next=target, error=str(exc), status_code=exc.http_status)  # fmt: skip
        response = RedirectResponse(target, status_code=303, headers=PAGE_HEADERS)
        secure = request.url.scheme == "https"
        max_age = int(sources.config.session_max_age)
        response.headers.append("set-cookie", session_cookie(token, max_age=max_age, secure=secure))
        return response

    @router.post("/ui/logout")
    def logout(request: Request) -> Response:
        response = RedirectResponse("/ui/login", status_code=303)
        response.headers.append("set-cookie", cleared_cookie(secure=request.url.scheme == "https"))
        return response

    for module in (overview, service_page, alerts_page, errors_page, logs_page, trace_page):
        module.add_routes(router, sources)
    return router
