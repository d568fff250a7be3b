"""Access to the admin API: every route has a decision in one table, and each decision holds
for a caller with no token, the wrong scope and the right one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, MutableMapping
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import Route

from gateway.api.admin import create_admin_app
from gateway.config.loading import default_config
from gateway.config.model import Config
from gateway.security.access import ROUTES, route_access
from gateway.service import Gateway

TOKENS = {
    "reader": "reader-token-0123456789abcdef",
    "operator": "operator-token-0123456789abcdef",
    "sender": "sender-token-0123456789abcdef",
}
SCOPES = {"reader": ["read"], "operator": ["read", "admin"], "sender": ["ingest"]}


def secured_config(tmp_path: Any, **auth: Any) -> Config:
    base = default_config({"OTELGATE_DATA_DIR": str(tmp_path)})
    tokens = [{"name": n, "token": t, "scopes": SCOPES[n]} for n, t in TOKENS.items()]
    return base.model_copy(
        update={
            "auth": type(base.auth).model_validate({"tokens": tokens, **auth}),
            "audit": type(base.audit).model_validate({"path": str(tmp_path / "audit.jsonl")}),
        }
    )


@pytest.fixture
def gateway(tmp_path: Any) -> Iterator[Gateway]:
    config = secured_config(tmp_path)
    yield Gateway(config, reload_config=lambda: config)


@pytest.fixture
async def admin(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=gateway.admin_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
        yield client


def app_routes(gateway: Gateway) -> set[tuple[str, str]]:
    """Every (method, path) the admin app serves: its own routes and the components'."""
    own = create_admin_app(gateway.registry, gateway.readiness, []).routes
    routes = [*own, *(r for router in gateway.admin_routers for r in router.routes)]
    found = set()
    for route in routes:
        if not isinstance(route, Route | APIRoute):
            continue  # FastAPI's own wrappers of included routers: their routes are listed
        for method in route.methods or ():
            if method != "HEAD":
                found.add((method, route.path))
    return found


def test_every_admin_route_has_an_access_decision(gateway: Gateway):
    served = app_routes(gateway)
    table = {(r.method, r.path) for r in ROUTES}
    assert served - table == set(), "add these routes to gateway.security.access.ROUTES"
    assert table - served == set(), "the table lists routes nobody serves any more"


def test_state_changes_need_admin_and_are_audited():
    for route in ROUTES:
        if route.public:  # the login form and logout change no gateway state
            assert route.action is None and route.path.startswith("/ui/"), route
        elif route.method != "GET":
            assert route.scope == "admin", route
            assert route.action is not None or route.path == "/-/reload", route
        elif route.action is not None:
            pytest.fail(f"a read is audited per request: {route}")


def test_unknown_routes_need_admin():
    assert route_access("GET", "/secret-new-page")[0].scope == "admin"
    assert route_access("HEAD", "/health")[0].scope == "read"
    route, params = route_access("GET", "/health/services/a/b")
    assert (route.path, params) == ("/health/services/{name:path}", {"name": "a/b"})


def concrete(path: str) -> str:
    return path.replace("{name:path}", "checkout").replace("{", "x").replace("}", "")


def bearer(name: str) -> dict[str, str]:
    return {"authorization": f"Bearer {TOKENS[name]}"}


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
async def test_each_route_answers_by_scope(admin: httpx.AsyncClient, route):
    path = concrete(route.path)
    probe = path in ("/health/live", "/health/ready")

    async def call(headers: dict[str, str]) -> httpx.Response:
        return await admin.request(route.method, path, headers=headers, json={})

    anonymous = await call({})
    if probe:
        assert anonymous.status_code not in (401, 403)
        return
    if route.public:  # the login form answers itself (a refused login is its own 401 page)
        assert anonymous.status_code != 403 and "www-authenticate" not in anonymous.headers
        return
    if route.page:  # a browser without a session goes to the login form, and comes back
        assert anonymous.status_code == 303, anonymous.text
        assert anonymous.headers["location"].startswith("/ui/login?next=")
    else:
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == 'Bearer realm="otelgate"'
    assert (await call(bearer("sender"))).status_code == 403  # ingest only
    reader = await call(bearer("reader"))
    assert (reader.status_code == 403) == (route.scope == "admin"), reader.text
    assert (await call(bearer("operator"))).status_code not in (401, 403)


async def test_refusals_say_why_without_the_token(admin: httpx.AsyncClient):
    wrong = await admin.get("/health", headers={"authorization": "Bearer not-a-known-token-123"})
    assert wrong.json() == {"detail": "invalid bearer token"}
    denied = await admin.post("/-/reload", headers=bearer("reader"))
    assert denied.status_code == 403
    assert (
        denied.json()["detail"] == "'reader' may not do this: it needs the admin scope (has read)"
    )
    assert TOKENS["reader"] not in denied.text


async def test_probes_can_be_closed(tmp_path: Any):
    config = secured_config(tmp_path, open_paths=[])
    gateway = Gateway(config)
    transport = httpx.ASGITransport(app=gateway.admin_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
        assert (await client.get("/health/live")).status_code == 401
        assert (await client.get("/health/live", headers=bearer("reader"))).status_code == 200


async def test_without_auth_everything_is_open(tmp_path: Any):
    gateway = Gateway(default_config({"OTELGATE_DATA_DIR": str(tmp_path)}))
    transport = httpx.ASGITransport(app=gateway.admin_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
        assert (await client.get("/metrics")).status_code == 200


async def test_an_open_path_opens_reads_only(tmp_path: Any):
    """Found in review: open_paths ignored the method, so opening /silences for reading
    opened POST /silences (creating a silence) to anyone."""
    config = secured_config(tmp_path, open_paths=["/health/live", "/silences", "/audit"])
    gateway = Gateway(config)
    transport = httpx.ASGITransport(app=gateway.admin_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
        assert (await client.get("/silences")).status_code not in (401, 403)
        assert (await client.post("/silences", json={})).status_code == 401
        assert (await client.get("/audit")).status_code == 401  # an admin route stays closed


async def test_a_configured_scrape_path_is_readable(tmp_path: Any):
    base = secured_config(tmp_path)
    prometheus = base.exporters["prometheus"]
    exporters = {**base.exporters, "prometheus": prometheus.model_copy(update={"path": "/scrape"})}
    gateway = Gateway(base.model_copy(update={"exporters": exporters}))
    transport = httpx.ASGITransport(app=gateway.admin_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
        assert (await client.get("/scrape")).status_code == 401
        assert (await client.get("/scrape", headers=bearer("reader"))).status_code == 200


async def test_websockets_are_closed_before_the_app(gateway: Gateway):
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/health", "headers": []}
    await gateway.admin_app(scope, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}]
