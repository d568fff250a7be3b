"""The dashboard with authentication on, in real headless Chromium: the login form, the
HttpOnly session cookie, read-only sessions, admin actions through the CSRF-protected API,
logging out; and an overview of 200 services that stays live."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span
from playwright.sync_api import Browser, expect

from tests.support.browser import chromium, docs_image, screenshot, watch, watched_page
from tests.support.gateway_process import GatewayProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

READER = "reader-token-0123456789abcdef"
OPERATOR = "operator-token-0123456789abcdef"
SENDER = "sender-token-0123456789abcdef"
SERVICES = 200


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    tokens = [
        {"name": "reader", "token": READER, "scopes": ["read"]},
        {"name": "operator", "token": OPERATOR, "scopes": ["read", "admin"]},
        {"name": "sender", "token": SENDER, "scopes": ["ingest"]},
    ]
    config: dict[str, Any] = {
        "exporters": {"store": None},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["store"]}}},
        "auth": {"tokens": tokens},
        "dashboard": {"refresh_interval": "1s"},
    }
    with GatewayProcess(config, tmp_path_factory.mktemp("login")) as process:
        process.admin_headers = {"authorization": f"Bearer {OPERATOR}"}
        yield process


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as found:
        yield found


def test_login_session_and_admin_actions(gateway, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = watch(page, allowed_statuses=frozenset({401}))  # the wrong token, on purpose
    try:
        page.goto(f"{gateway.admin_url}/ui/alerts")
        assert page.url == f"{gateway.admin_url}/ui/login?next=%2Fui%2Falerts"
        screenshot(page, "login")
        docs_image(page, "login")
        page.get_by_label("Token").fill("not-the-token-at-all-0000")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert").filter(has_text="token")).to_be_visible()
        assert context.cookies() == []

        page.get_by_label("Token").fill(READER)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(f"{gateway.admin_url}/ui/alerts")
        expect(page.locator(".who")).to_have_text("reader")
        cookie = next(c for c in context.cookies() if c["name"] == "otelgate_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        assert "otelgate_session" not in page.evaluate("document.cookie")  # scripts can't
        expect(page.get_by_role("button", name="Create silence")).to_be_disabled()

        page.get_by_role("button", name="Log out").click()
        expect(page).to_have_url(f"{gateway.admin_url}/ui/login")
        page.goto(f"{gateway.admin_url}/")
        expect(page).to_have_url(f"{gateway.admin_url}/ui/login?next=%2F")

        page.get_by_label("Token").fill(OPERATOR)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(f"{gateway.admin_url}/")
        page.goto(f"{gateway.admin_url}/ui/alerts")
        page.get_by_label("Matchers", exact=False).fill('service="checkout"')
        page.get_by_label("Comment").fill("deploy of 2.1")
        page.get_by_role("button", name="Create silence").click()  # POST with X-CSRF-Token
        expect(page.locator("#notice")).to_have_class(re.compile(r"\bok\b"))  # succeeded
        expect(page.locator("#silences")).to_contain_text('service="checkout"')
        screenshot(page, "alerts-silenced")
        assert problems.all() == []
    finally:
        context.close()
    silences = httpx.get(
        f"{gateway.admin_url}/silences", headers=gateway.admin_headers, timeout=5
    ).json()["silences"]
    assert [(s["created_by"], s["comment"]) for s in silences] == [("operator", "deploy of 2.1")]


def spans_of(count: int) -> bytes:
    """One request with ``count`` services, 20 SERVER spans each."""
    now = time.time_ns()
    request = ExportTraceServiceRequest()
    for i in range(count):
        resource_spans: ResourceSpans = request.resource_spans.add()
        name = KeyValue(key="service.name", value=AnyValue(string_value=f"svc-{i:03d}"))
        resource_spans.resource.attributes.append(name)
        scope = resource_spans.scope_spans.add()
        for j in range(20):
            scope.spans.append(
                Span(
                    trace_id=(i * 100 + j + 1).to_bytes(16, "big"),
                    span_id=(j + 1).to_bytes(8, "big"),
                    name="GET /",
                    kind=Span.SPAN_KIND_SERVER,
                    start_time_unix_nano=now - 50_000_000,
                    end_time_unix_nano=now - 50_000_000 + (i + 1) * 1_000_000,
                )
            )
    return request.SerializeToString()


def test_an_overview_of_200_services_stays_live(gateway, browser):
    sent = httpx.post(
        f"{gateway.http_endpoint}/v1/traces",
        content=spans_of(SERVICES),
        headers={"content-type": "application/x-protobuf", "authorization": f"Bearer {SENDER}"},
        timeout=10,
    )
    assert sent.status_code == 200, sent.text
    with watched_page(browser, headers=gateway.admin_headers) as (page, problems, _):
        page.goto(f"{gateway.admin_url}/")
        rows = page.locator("#services-table tbody tr")
        expect(rows).to_have_count(SERVICES)
        timings = [page.evaluate("async () => { const t = performance.now(); "
                                 "await window.otelgate.refresh(); return performance.now() - t; }")
                   for _ in range(5)]  # fmt: skip
        print(f"live refresh of {SERVICES} services: {sorted(timings)} ms")  # for the notes
        page.get_by_label("Filter services").fill("svc-017")
        expect(page.locator("#services-table tbody tr:visible")).to_have_count(1)
        page.wait_for_timeout(1500)  # a refresh swaps the table: the filter still holds
        expect(page.locator("#services-table tbody tr:visible")).to_have_count(1)
        screenshot(page, "overview-200-services")
        assert problems.all() == []
