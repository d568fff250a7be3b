"""The dashboard's login form, session cookie, CSRF token and same-origin rule, through the
gateway's real admin application (access control included)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.config.loading import default_config
from gateway.config.model import Config
from gateway.security.sessions import SESSION_COOKIE, Sessions, cross_origin, session_token
from gateway.service import Gateway

READER = "reader-token-0123456789abcdef"
OPERATOR = "operator-token-0123456789abcdef"
SENDER = "sender-token-0123456789abcdef"


def secured(tmp_path: Any) -> Config:
    base = default_config({"OTELGATE_DATA_DIR": str(tmp_path)})
    tokens = [
        {"name": "reader", "token": READER, "scopes": ["read"]},
        {"name": "operator", "token": OPERATOR, "scopes": ["read", "admin"]},
        {"name": "sender", "token": SENDER, "scopes": ["ingest"]},
    ]
    auth = type(base.auth).model_validate({"tokens": tokens})
    return base.model_copy(update={"auth": auth})


async def client_for(config: Config) -> AsyncIterator[httpx.AsyncClient]:
    gateway = Gateway(config)
    transport = httpx.ASGITransport(app=gateway.admin_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
        yield client


@pytest.fixture
async def admin(tmp_path: Any) -> AsyncIterator[httpx.AsyncClient]:
    async for client in client_for(secured(tmp_path)):
        yield client


async def log_in(client: httpx.AsyncClient, token: str, next: str = "/") -> httpx.Response:
    return await client.post("/ui/login", data={"token": token, "next": next})


def csrf_of(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([0-9a-f]*)">', html)
    assert found is not None, html[:500]
    return found[1]


async def test_a_page_without_a_session_goes_to_the_login_form_and_back(admin):
    first = await admin.get("/ui/alerts?state=firing")
    assert first.status_code == 303
    assert first.headers["location"] == "/ui/login?next=%2Fui%2Falerts%3Fstate%3Dfiring"
    form = await admin.get(first.headers["location"])
    assert form.status_code == 200
    assert 'name="next" value="/ui/alerts?state=firing"' in form.text
    assert '<label for="token">' in form.text
    done = await log_in(admin, READER, "/ui/alerts?state=firing")
    assert done.status_code == 303 and done.headers["location"] == "/ui/alerts?state=firing"
    cookie = done.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    for flag in ("HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"):
        assert flag in cookie
    assert READER not in cookie  # encoded, not the raw token
    page = await admin.get("/")
    assert page.status_code == 200 and "<h1>Overview</h1>" in page.text
    assert "reader" in page.text  # who is logged in
    assert (await admin.get("/health")).status_code in (200, 503)  # the JSON API too


async def test_a_wrong_token_or_one_without_read_is_refused_without_a_cookie(admin):
    wrong = await log_in(admin, "not-a-token-at-all-really")
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    assert 'role="alert"' in wrong.text
    ingest = await log_in(admin, SENDER)
    assert ingest.status_code == 403 and "needs the read scope" in ingest.text
    assert "set-cookie" not in ingest.headers


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "\\\\evil"])
async def test_login_never_redirects_off_the_gateway(admin, target):
    done = await log_in(admin, READER, target)
    assert done.status_code == 303 and done.headers["location"] == "/"


async def test_state_changes_with_the_cookie_need_the_csrf_token(admin):
    await log_in(admin, OPERATOR)
    body = {"matchers": ['service="x"'], "duration": 60, "created_by": "t"}
    without = await admin.post("/silences", json=body)
    assert without.status_code == 403 and "X-CSRF-Token" in without.text
    forged = await admin.post("/silences", json=body, headers={"x-csrf-token": "0" * 64})
    assert forged.status_code == 403
    token = csrf_of((await admin.get("/")).text)
    made = await admin.post("/silences", json=body, headers={"x-csrf-token": token})
    assert made.status_code not in (401, 403), made.text  # past access control (not started)


async def test_a_read_session_cannot_change_state(admin):
    await log_in(admin, READER)
    token = csrf_of((await admin.get("/")).text)
    body = {"matchers": ['service="x"'], "duration": 60, "created_by": "t"}
    refused = await admin.post("/silences", json=body, headers={"x-csrf-token": token})
    assert refused.status_code == 403 and "admin scope" in refused.text


async def test_a_bearer_token_needs_no_csrf_token(admin):
    body = {"matchers": ['service="x"'], "duration": 60, "created_by": "t"}
    made = await admin.post("/silences", json=body, headers={"authorization": f"Bearer {OPERATOR}"})
    assert made.status_code not in (401, 403)


async def test_logout_ends_the_session(admin):
    await log_in(admin, READER)
    out = await admin.post("/ui/logout")
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    assert "Max-Age=0" in out.headers["set-cookie"]
    assert (await admin.get("/")).status_code == 303


async def test_a_revoked_token_in_the_cookie_sends_back_to_login_and_clears_it(admin):
    admin.cookies.set(SESSION_COOKIE, Sessions.encode("revoked-token-0123456789abcdef"))
    again = await admin.get("/")
    assert again.status_code == 303 and "Max-Age=0" in again.headers["set-cookie"]


async def test_cross_origin_state_changes_are_refused_even_without_auth(tmp_path):
    config = default_config({"OTELGATE_DATA_DIR": str(tmp_path)})
    async for client in client_for(config):
        body = {"matchers": ['service="x"'], "duration": 60, "created_by": "t"}
        evil = {"sec-fetch-site": "cross-site"}
        assert (await client.post("/silences", json=body, headers=evil)).status_code == 403
        other = {"origin": "http://evil.example"}
        assert (await client.post("/silences", json=body, headers=other)).status_code == 403
        assert (await client.get("/", headers=evil)).status_code == 200  # reads are fine
        same = {"sec-fetch-site": "same-origin"}
        assert (await client.post("/silences", json=body, headers=same)).status_code not in (
            401, 403)  # fmt: skip
        # Without auth there is no login: the form sends you on.
        assert (await client.get("/ui/login?next=/ui/alerts")).headers["location"] == "/ui/alerts"


def test_cookie_and_origin_parsing():
    value = Sessions.encode('tok;en with spaces=and"quotes"-0123456789')
    assert session_token({b"cookie": f"a=b; {SESSION_COOKIE}={value}".encode()}) == (
        'tok;en with spaces=and"quotes"-0123456789'
    )
    assert session_token({b"cookie": b"otelgate_session=%%%"}) is None
    # Another application's malformed cookies on the same host do not hide ours.
    for other in (b'a={"x": 1}', b'ajs_user=["a","b"]', b"x=y z", b'sid=abc"def'):
        raw = other + b"; " + f"{SESSION_COOKIE}={Sessions.encode('tok-0123456789abcdef')}".encode()
        assert session_token({b"cookie": raw}) == "tok-0123456789abcdef", other
    assert session_token({}) is None
    assert not cross_origin({b"origin": b"http://admin:8888", b"host": b"admin:8888"})
    assert cross_origin({b"origin": b"http://admin:9999", b"host": b"admin:8888"})
    assert cross_origin({b"origin": b"null", b"host": b"admin"})
    assert not cross_origin({b"host": b"admin"})  # curl, scripts
    assert cross_origin({b"sec-fetch-site": b"same-site"})
    sessions = Sessions(b"k" * 32)
    token = sessions.csrf_token("t")
    assert sessions.csrf_valid({b"x-csrf-token": token.encode()}, "t")
    assert not sessions.csrf_valid({b"x-csrf-token": token.encode()}, "u")
    assert not sessions.csrf_valid({b"x-csrf-token": b"\xe9"}, "t")  # refused, not a 500
