"""Who may call which admin route: one table, enforced by a pure ASGI middleware.

Every admin route is listed in :data:`ROUTES` with the scope it needs (``read`` for what
shows data, ``admin`` for what changes state) and, for state changes, the action it writes to
the audit trail. A route missing from the table needs ``admin`` (closed by default), and a
test walks the application's routes so a new one cannot be added without a decision. The
paths in ``auth.open_paths`` (the probes, by default) need no credential.
"""

from __future__ import annotations

import contextvars
import re
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import PermissionDeniedError, RefusedError
from gateway.security.auth import ANONYMOUS, Authenticator
from gateway.security.auth_config import Scope as AuthScope
from gateway.security.sessions import (
    SAFE_METHODS,
    Sessions,
    cleared_cookie,
    cross_origin,
    session_token,
)

current_actor: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "otelgate_actor", default=None
)
"""The identity name of the admin request being handled (None: anonymous or not a request);
read by code that writes audit entries for its own actions (config reload)."""


class AuditRecorder(Protocol):
    """Where audited admin actions go (:class:`gateway.audit.trail.AuditTrail`)."""

    def record(
        self, action: str, actor: str | None = None, details: dict[str, Any] | None = None
    ) -> object:
        """Append one entry."""


@dataclass(frozen=True, slots=True)
class RouteAccess:
    """One admin route: method, path template, the scope it needs, its audit action."""

    method: str
    path: str
    scope: AuthScope
    action: str | None = None
    details: tuple[tuple[str, str], ...] = ()  # fixed details of the audit entry
    page: bool = False  # a dashboard page: without a credential, redirect to the login form
    public: bool = False  # needs no credential at all (the login form and its CSS and JS)


def _read(path: str) -> RouteAccess:
    return RouteAccess("GET", path, "read")


def _page(path: str) -> RouteAccess:
    return RouteAccess("GET", path, "read", page=True)


def _public(method: str, path: str) -> RouteAccess:
    return RouteAccess(method, path, "read", public=True)


LOGIN_PATH = "/ui/login"


_GROUP = "error_group.status"
MAX_RECORDED_BODY = 4096  # request and response bytes an audit entry may quote


ROUTES: tuple[RouteAccess, ...] = (
    # Prometheus scrapes and the API documentation.
    _read("/metrics"),
    _read("/metrics/otlp"),
    _read("/openapi.json"),
    _read("/docs"),
    _read("/docs/oauth2-redirect"),
    _read("/redoc"),
    # Health (the two probes are usually in auth.open_paths), SLOs, the store's views.
    _read("/health/live"),
    _read("/health/ready"),
    _read("/health"),
    _read("/health/services"),
    _read("/health/services/{name:path}"),
    _read("/health/history"),
    _read("/health/history/{name:path}"),
    _read("/slo"),
    _read("/slo/{name}"),
    _read("/logs"),
    _read("/traces"),
    _read("/traces/{trace_id}"),
    # Error groups.
    _read("/errors"),
    _read("/errors/{group_id}"),
    RouteAccess("POST", "/errors/{group_id}/resolve", "admin", _GROUP, (("to", "resolved"),)),
    RouteAccess("POST", "/errors/{group_id}/ignore", "admin", _GROUP, (("to", "ignored"),)),
    RouteAccess("POST", "/errors/{group_id}/unresolve", "admin", _GROUP, (("to", "unresolved"),)),
    # Alerts and silences.
    _read("/alerts"),
    _read("/alerts/rules"),
    _read("/alerts/history"),
    _read("/alerts/{alert_id}"),
    RouteAccess("POST", "/alerts/{alert_id}/ack", "admin", "alert.ack"),
    _read("/silences"),
    RouteAccess("POST", "/silences", "admin", "silence.create"),
    RouteAccess("DELETE", "/silences/{silence_id}", "admin", "silence.expire"),
    # Operations. The reload writes its own audit entry (it also runs on SIGHUP).
    RouteAccess("POST", "/-/reload", "admin"),
    RouteAccess("GET", "/audit", "admin"),
    # The dashboard (gateway.dashboard): pages, the log tail, the login form.
    _page("/"),
    _page("/ui/services/{name:path}"),
    _page("/ui/alerts"),
    _page("/ui/errors"),
    _page("/ui/errors/{group_id}"),
    _page("/ui/logs"),
    _read("/ui/logs/tail"),
    _page("/ui/traces"),
    _page("/ui/traces/{trace_id}"),
    _public("GET", LOGIN_PATH),
    _public("POST", LOGIN_PATH),
    _public("POST", "/ui/logout"),
    _public("GET", "/ui/static/{path:path}"),
)


def _pattern(template: str) -> re.Pattern[str]:
    """A regex for a path template: ``{x}`` one segment, ``{x:path}`` the rest."""
    out, pos = [], 0
    for match in re.finditer(r"\{(\w+)(:path)?\}", template):
        out.append(re.escape(template[pos : match.start()]))
        out.append(f"(?P<{match[1]}>.+)" if match[2] else f"(?P<{match[1]}>[^/]+)")
        pos = match.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out))


_COMPILED = [(route, _pattern(route.path)) for route in ROUTES]
_CLOSED = RouteAccess("*", "*", "admin")  # what a route missing from the table needs


def route_access(
    method: str, path: str, extra: tuple[RouteAccess, ...] = ()
) -> tuple[RouteAccess, dict[str, str]]:
    """The table entry for a request (HEAD as GET) and its path parameters; ``extra`` are
    exact-path entries for routes whose path comes from the configuration."""
    method = "GET" if method == "HEAD" else method
    for route in extra:
        if route.method == method and route.path == path:
            return route, {}
    for route, pattern in _COMPILED:
        if route.method == method and (found := pattern.fullmatch(path)) is not None:
            return route, found.groupdict()
    return _CLOSED, {}


class AdminAccess:
    """ASGI middleware: authenticates admin requests, checks the route's scope, sets
    :data:`current_actor` and writes audited actions (with their outcome) to the trail."""

    def __init__(
        self,
        app: ASGIApp,
        auth: Authenticator | None,
        audit: AuditRecorder | None = None,
        extra: tuple[RouteAccess, ...] = (),
        sessions: Sessions | None = None,
    ) -> None:
        self.app = app
        self.extra = extra  # routes whose path is configured (a Prometheus exporter's)
        self.auth = auth
        self.audit = audit
        self.open_paths = frozenset(auth.config.open_paths) if auth is not None else frozenset()
        self.sessions = sessions if sessions is not None else Sessions()

    def _open(self, scope: Scope, route: RouteAccess) -> bool:
        """An open path, read with GET or HEAD, of a route that needs no more than ``read``."""
        return (
            scope["path"] in self.open_paths
            and scope["method"] in ("GET", "HEAD")
            and route.scope == "read"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # no admin route is one: never let one through
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route, params = route_access(scope["method"], scope["path"], self.extra)
        headers = dict(scope.get("headers") or ())
        unsafe = scope["method"] not in SAFE_METHODS
        if unsafe and cross_origin(headers):
            await _refuse(send, PermissionDeniedError("a state change from another origin"))
            return
        identity = ANONYMOUS
        state = scope.setdefault("state", {})
        state["auth_enabled"] = self.auth is not None and self.auth.enabled
        if state["auth_enabled"] and not route.public and not self._open(scope, route):
            assert self.auth is not None
            authorization = headers.get(b"authorization")
            cookie = session_token(headers) if authorization is None else None
            tls = (scope.get("extensions") or {}).get("tls") or {}
            client = scope.get("client")
            try:
                if cookie is not None and unsafe and not self.sessions.csrf_valid(headers, cookie):
                    raise PermissionDeniedError("the X-CSRF-Token header is missing or wrong")
                identity = self.auth.authenticate(
                    f"Bearer {cookie}"
                    if cookie is not None
                    else authorization.decode("latin-1")
                    if authorization
                    else None,
                    tls.get("client_cert_name"),
                    scope=route.scope,
                    transport="admin",
                    peer=f"{client[0]}:{client[1]}" if client else None,
                )
            except RefusedError as exc:
                if route.page and exc.http_status == 401:
                    await _to_login(scope, send, clear=cookie is not None)
                else:
                    await _refuse(send, exc)
                return
            self.auth.accepted(identity, "", 0, "admin")
            if cookie is not None:
                state["csrf_token"] = self.sessions.csrf_token(cookie)
        state["identity"] = identity
        actor = None if identity is ANONYMOUS else identity.name
        token = current_actor.set(actor)
        try:
            if route.action is not None and self.audit is not None:
                await self._audited(scope, receive, send, route, actor, params)
            else:
                await self.app(scope, receive, send)
        finally:
            current_actor.reset(token)

    async def _audited(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: RouteAccess,
        actor: str | None,
        params: dict[str, str],
    ) -> None:
        """Run the request, then record the action with its outcome: the path parameters,
        the JSON request (a silence's matchers, an ack's comment) and the id it created."""
        status = 500
        request, response = bytearray(), bytearray()

        async def listen() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(request) <= MAX_RECORDED_BODY:
                request.extend(message.get("body", b""))
            return message

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and len(response) <= MAX_RECORDED_BODY:
                response.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, listen, watch)
        finally:
            details: dict[str, Any] = {**params, **dict(route.details), "status": status}
            asked = _json(bytes(request))
            if asked:
                details["request"] = asked
            answer = _json(bytes(response)) if 200 <= status < 300 else None
            if isinstance(answer, dict) and answer.get("id") is not None:
                details["id"] = str(answer["id"])
            assert self.audit is not None and route.action is not None
            self.audit.record(route.action, actor, details)


def _json(body: bytes) -> Any:
    """A JSON body small enough to quote, parsed; else None."""
    if not body or len(body) > MAX_RECORDED_BODY:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


async def _refuse(send: Send, error: RefusedError) -> None:
    headers = [(b"content-type", b"application/json")]
    if error.http_status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="otelgate"'))
    body = orjson.dumps({"detail": str(error)})
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": error.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _to_login(scope: Scope, send: Send, *, clear: bool) -> None:
    """Send a browser without a valid session to the login form, back here afterwards."""
    here = scope["path"] + (f"?{scope['query_string'].decode('latin-1')}" if scope.get(
        "query_string") else "")  # fmt: skip
    location = f"{LOGIN_PATH}?{urlencode({'next': here})}"
    headers = [(b"location", location.encode("latin-1")), (b"content-length", b"0")]
    if clear:
        secure = scope.get("scheme") == "https"
        headers.append((b"set-cookie", cleared_cookie(secure=secure).encode("latin-1")))
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
