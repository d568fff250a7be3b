"""Rendering dashboard pages: one Jinja2 environment (autoescaped), the context every page
shares, and the headers that keep a page to the gateway's own scripts and styles."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse

from gateway import __version__
from gateway.dashboard.charts import format_value
from gateway.security.auth import ANONYMOUS, Identity

#: Only the gateway's own files run or style a page: no inline script, no CDN.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

NAVIGATION = (
    ("overview", "/", "Overview"),
    ("alerts", "/ui/alerts", "Alerts"),
    ("errors", "/ui/errors", "Errors"),
    ("logs", "/ui/logs", "Logs"),
    ("traces", "/ui/traces", "Traces"),
)


def ago(seconds: float | None) -> str:
    """``12 s ago``, ``3 min ago``, ``2 h ago``, ``4 d ago``."""
    if seconds is None:
        return "never"
    seconds = max(0.0, seconds)
    for limit, size, unit in ((60, 1, "s"), (3600, 60, "min"), (86400, 3600, "h")):
        if seconds < limit:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds // 86400)} d ago"


def since(moment: datetime | float | None) -> str:
    """How long ago a moment (datetime or epoch seconds) was."""
    if moment is None:
        return "never"
    at = moment.timestamp() if isinstance(moment, datetime) else moment
    return ago(time.time() - at)


def clock(moment: datetime | float | None) -> str:
    """A moment as ``YYYY-MM-DD HH:MM:SS`` UTC."""
    if moment is None:
        return "—"
    at = moment if isinstance(moment, datetime) else datetime.fromtimestamp(moment, UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("gateway.dashboard", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["value"] = format_value
    env.filters["ago"] = ago
    env.filters["since"] = since
    env.filters["clock"] = clock
    return env


ENVIRONMENT = _environment()


def identity_of(request: Request) -> Identity:
    """Who is looking (anonymous without authentication)."""
    found = getattr(request.state, "identity", ANONYMOUS)
    return found if isinstance(found, Identity) else ANONYMOUS


def page(
    request: Request,
    template: str,
    *,
    title: str,
    section: str,
    refresh: float,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render a page with the shared context (navigation, who is logged in, CSRF token)."""
    identity = identity_of(request)
    auth_enabled = bool(getattr(request.state, "auth_enabled", False))
    html = ENVIRONMENT.get_template(template).render(
        title=title,
        section=section,
        navigation=NAVIGATION,
        refresh_ms=int(refresh * 1000),
        csrf_token=getattr(request.state, "csrf_token", ""),
        auth_enabled=auth_enabled,
        user=None if identity is ANONYMOUS else identity.name,
        can_admin=not auth_enabled or "admin" in identity.scopes,
        version=__version__,
        rendered_at=clock(time.time()),
        **context,
    )
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)


MAX_OFFSET = 1_000_000  # a larger offset is a typo (and overflows SQLite's integer)


def page_offset(params: Mapping[str, str]) -> int:
    """The ``offset`` of a list page's query string: 0 when missing or malformed, capped."""
    try:
        return min(max(0, int(params.get("offset", "0"))), MAX_OFFSET)
    except ValueError:
        return 0
