"""The Errors pages over a real error tracker fed OTLP batches: the groups with filters,
sparklines and status buttons, one group's detail with its stack trace and samples, the 404,
who may press the buttons, escaping, error tracking off."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp

from gateway.api.errors import errors_router
from gateway.config.loading import default_config
from gateway.dashboard.config import DashboardConfig
from gateway.dashboard.errors_page import MINUTES
from gateway.dashboard.router import dashboard_router
from gateway.dashboard.sources import DashboardSources
from gateway.error_tracking.config import ErrorTrackingConfig
from gateway.error_tracking.persistence import ErrorStore
from gateway.error_tracking.service import ErrorTrackingService
from gateway.error_tracking.tracker import ErrorTracker
from gateway.security.access import AdminAccess
from gateway.security.auth import Authenticator
from gateway.security.auth_config import AuthConfig
from gateway.security.sessions import Sessions
from gateway.service import Gateway
from gateway.store.sqlite import MEMORY, SqliteStore
from tests.gateway.dashboard.pages import OPERATOR, READER, row, rows_of, tags
from tests.gateway.error_tracking.batches import (
    OTHER_STACK,
    log_with_exception,
    logs,
    resource,
    span_with_exception,
    traces,
)

T0 = 1_800_000_000.0  # a minute boundary
LIBRARY_STACK = """Traceback (most recent call last):
  File "/srv/app/shop/api.py", line 88, in search
    return index.query(text)
  File "/usr/lib/python3.12/site-packages/elastic/client.py", line 301, in query
    raise TimeoutError("search timed out")
TimeoutError: search timed out
"""


class World:
    """An error tracker (in-memory store) whose clock the test moves."""

    def __init__(self) -> None:
        self.now = T0
        self.tracker = ErrorTracker(ErrorTrackingConfig(), clock=lambda: self.now)
        self.errors = ErrorTrackingService(self.tracker, flush_interval=60, clock=lambda: self.now)
        self.sqlite = SqliteStore(MEMORY)
        self.errors.store = ErrorStore(self.sqlite, 10)

    def group_id(self, kind: str) -> str:
        return next(g.id for g in self.tracker.groups.values() if g.type == kind)


def app_for(gateway: Gateway, errors: ErrorTrackingService | None, auth: bool = False) -> ASGIApp:
    sources = DashboardSources(
        DashboardConfig(), gateway.health_api, gateway.slo_tracker, None, errors,
        lambda: None, None, Sessions(),
    )  # fmt: skip
    app = FastAPI()
    app.include_router(dashboard_router(sources))
    if errors is not None:
        app.include_router(errors_router(errors))
    if not auth:
        return app
    tokens = [{"name": "reader", "token": READER, "scopes": ["read"]},
              {"name": "operator", "token": OPERATOR, "scopes": ["read", "admin"]}]  # fmt: skip
    return AdminAccess(app, Authenticator(AuthConfig.model_validate({"tokens": tokens})))


async def client(app: ASGIApp, token: str | None = None) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://admin", headers=headers)


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    """A gateway that is never started: its health service and SLO tracker are the pages'."""
    return Gateway(default_config({"OTELGATE_DATA_DIR": str(tmp_path)}))


@pytest.fixture
def world() -> World:
    found = World()
    for _ in range(3):
        found.tracker.observe(traces(span_with_exception()))
    found.now += 100
    other = span_with_exception("KeyError", "'o-1'", OTHER_STACK)
    found.tracker.observe(traces(other, res=resource(service="billing", version="2.1.0")))
    found.tracker.observe(logs(log_with_exception("TimeoutError", "search timed out",
                                                  LIBRARY_STACK)))  # fmt: skip
    return found


@pytest.fixture
async def ui(gateway: Gateway, world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with await client(app_for(gateway, world.errors)) as found:
        yield found


def listed(text: str) -> list[str]:
    return re.findall(r'<tr id="group-([0-9a-f]+)"', text)


async def test_groups_with_counts_filters_and_status_buttons(world, ui):
    value_error, key_error = world.group_id("ValueError"), world.group_id("KeyError")
    page = await ui.get("/ui/errors")
    assert page.status_code == 200 and page.text.count("<h1>") == 1
    assert 'id="groups" data-live' in page.text
    assert len(listed(page.text)) == 3 and rows_of(1, 3, 3) in page.text
    first = row(page.text, f"group-{value_error}")
    for shown in ("<strong>ValueError</strong>", "cart &lt;num&gt; is empty", "badge unresolved",
                  '<td class="num" title="3 reports">3</td>', 'href="/ui/services/shop"',
                  f'href="/ui/errors/{value_error}"'):  # fmt: skip
        assert shown in first, shown
    assert 'href="/ui/services/billing"' in row(page.text, f"group-{key_error}")
    buttons = tags(first, "button")
    assert [b["data-post"] for b in buttons] == [
        f"/errors/{value_error}/resolve", f"/errors/{value_error}/ignore"]  # fmt: skip
    assert all(json.loads(b["data-body"]) == {"by": "dashboard"} for b in buttons)
    # Filters: a plain GET form; sorting as GET /errors sorts.
    by_count = (await ui.get("/ui/errors", params={"sort": "count"})).text
    assert listed(by_count)[0] == value_error and '<option value="count" selected>' in by_count
    billing = (await ui.get("/ui/errors", params={"service": "billing"})).text
    assert listed(billing) == [key_error] and "<option selected>billing</option>" in billing
    # Pressing Resolve posts to the JSON API; the page then offers Unresolve.
    done = await ui.post(buttons[0]["data-post"], json=json.loads(buttons[0]["data-body"]))
    assert done.status_code == 200 and done.json()["status_changed_by"] == "dashboard"
    resolved = (await ui.get("/ui/errors", params={"status": "resolved"})).text
    assert listed(resolved) == [value_error] and "badge resolved" in resolved
    assert tags(resolved, "button", data_post=f"/errors/{value_error}/unresolve")
    nothing = (await ui.get("/ui/errors", params={"status": "ignored"})).text
    assert listed(nothing) == [] and "No group matches these filters." in nothing
    lenient = await ui.get("/ui/errors", params={"status": "bogus", "offset": "x", "sort": "?"})
    assert lenient.status_code == 200 and len(listed(lenient.text)) == 3


async def test_pages_of_fifty(world, ui):
    for i in range(60):
        stack = f'Traceback (most recent call last):\n  File "/srv/app/m{i}.py", line 1, in f{i}\n    x()\nRuntimeError: boom\n'  # noqa: E501
        world.tracker.observe(traces(span_with_exception("RuntimeError", "boom", stack)))
    first = (await ui.get("/ui/errors")).text
    assert len(listed(first)) == 50 and rows_of(1, 50, 63) in first
    [following] = tags(first, "a", rel="next")
    assert following["href"] == "/ui/errors?offset=50"
    second = (await ui.get(following["href"])).text
    assert len(listed(second)) == 13 and rows_of(51, 63, 63) in second
    assert not set(listed(first)) & set(listed(second))


async def test_the_sparkline_counts_occurrences_per_minute(world, ui):
    key_error = world.group_id("KeyError")  # one occurrence, first seen at T0 + 100
    page = (await ui.get("/ui/errors")).text  # the minute it appeared in: 1
    assert "KeyError: occurrences per minute: 1 /min (min 0 /min, max 1 /min)" in page
    # ValueError's three were in the minute before, none in this one.
    assert "ValueError: occurrences per minute: 0 /min (min 0 /min, max 3 /min)" in page
    world.now = T0 + 120
    for _ in range(2):
        world.tracker.observe(traces(span_with_exception("KeyError", "'o-1'", OTHER_STACK)))
    page = (await ui.get("/ui/errors")).text
    line = row(page, f"group-{key_error}")
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="sparkline"' in line
    assert "KeyError: occurrences per minute: 2 /min (min 0 /min, max 2 /min)" in line
    assert "ValueError: occurrences per minute: 0 /min" in page  # none in minute 2
    detail = (await ui.get(f"/ui/errors/{key_error}")).text
    assert "KeyError: occurrences per minute: 2 /min" in detail


def test_groups_count_requests_per_minute_for_the_sparkline(world):
    group = world.tracker.groups[world.group_id("ValueError")]  # 3 requests at T0
    world.now = T0 + 150
    world.tracker.observe(traces(span_with_exception()))
    series = group.per_minute(T0 + 150)
    assert len(series) == MINUTES and series[-3:] == [3, 0, 1]
    assert sum(series) == group.count  # every counted request is in a minute
    assert group.per_minute(T0 + 150 + 3600) == [0] * MINUTES  # older than the sparkline


async def test_detail_shows_the_stack_frames_and_samples_linked_to_traces(world, ui):
    value_error = world.group_id("ValueError")
    page = await ui.get(f"/ui/errors/{value_error}")
    assert page.status_code == 200 and "<h1>ValueError</h1>" in page.text
    text = page.text
    for shown in ("3 requests (3 reports)", 'href="/ui/services/shop"', "<dd>1.0.0</dd>",
                  "python (grouped by stack)", '<span class="badge unresolved">unresolved</span>',
                  '<pre class="stack" tabindex="0" role="region"',
                  "raise ValueError(f&#34;cart {cart.id} is empty&#34;)"):  # fmt: skip
        assert shown in text, shown
    assert re.search(r'<tr class="in-app">\s*<td class="mono"><strong>create</strong>', text)
    samples = re.findall(r'<a href="/ui/traces/([0-9a-f]{32})">', text)
    assert len(samples) == 3
    assert all(f'href="/ui/logs?trace_id={t}"' in text for t in samples)
    assert {g.trace_id for g in await world.errors.samples(value_error)} == set(samples)
    assert [b["data-post"] for b in tags(text, "button")] == [
        f"/errors/{value_error}/resolve", f"/errors/{value_error}/ignore"]  # fmt: skip
    assert "http.route=/checkout" in text


async def test_library_frames_are_marked_and_a_sample_without_a_trace_says_so(world, ui):
    text = (await ui.get(f"/ui/errors/{world.group_id('TimeoutError')}")).text
    assert "1 of 2 frames are the application" in text
    library = re.search(r'<tr class="library muted">.*?</tr>', text, re.S)
    assert library is not None and "elastic/client.py" in library[0] and "library" in library[0]
    assert "<strong>search</strong>" in text and "no trace" in text


async def test_without_samples_the_fingerprint_frames_show(gateway):
    world = World()
    world.errors.store = None  # groups in memory only: samples are not kept once written
    world.tracker.observe(traces(span_with_exception()))
    await world.errors.flush()
    async with await client(app_for(gateway, world.errors)) as ui:
        text = (await ui.get(f"/ui/errors/{world.group_id('ValueError')}")).text
    assert "no sample with a readable stack is kept" in text and "No sample kept yet." in text
    assert '<td class="mono"><strong>create</strong></td>' in text


async def test_an_unknown_group_is_a_404_page(ui):
    missing = await ui.get("/ui/errors/%3Cb%3Enope")
    assert missing.status_code == 404 and "<h1>No such error group</h1>" in missing.text
    assert "<code>&lt;b&gt;nope</code>" in missing.text and 'href="/ui/errors"' in missing.text


async def test_hostile_messages_and_service_names_are_escaped(gateway):
    world = World()
    hostile = "<script>alert(1)</script>"
    span = span_with_exception("Boom", hostile, "")
    world.tracker.observe(traces(span, res=resource(service='<img src=x onerror="alert(1)">')))
    group_id = world.group_id("Boom")
    async with await client(app_for(gateway, world.errors)) as ui:
        pages = [(await ui.get(path)).text for path in ("/ui/errors", f"/ui/errors/{group_id}")]
    for text in pages:
        assert "<script>alert" not in text and "<img src=x" not in text
        assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[1]  # the sample's message as sent
    assert "No stack trace kept (the group is grouped by its message)." in pages[1]


async def test_buttons_are_enabled_for_admin_and_disabled_for_read_only(gateway, world):
    group_id = world.group_id("ValueError")
    app = app_for(gateway, world.errors, auth=True)
    for path in ("/ui/errors", f"/ui/errors/{group_id}"):
        async with await client(app, READER) as reader:
            buttons = tags((await reader.get(path)).text, "button", type="button")
        assert buttons and all(b["title"] == "Needs a token with the admin scope" for b in buttons)
        assert all("disabled" in b for b in buttons)
        async with await client(app, OPERATOR) as operator:
            buttons = tags((await operator.get(path)).text, "button", type="button")
        assert buttons and not any("disabled" in b for b in buttons)
        assert all(json.loads(b["data-body"]) == {"by": "operator"} for b in buttons)


async def test_error_tracking_off_says_how_to_turn_it_on(gateway):
    async with await client(app_for(gateway, None)) as ui:
        for path in ("/ui/errors", "/ui/errors/abc"):
            page = await ui.get(path)
            assert page.status_code == 200 and "Error tracking is off" in page.text
            assert "<code>errors.enabled: false</code>" in page.text
