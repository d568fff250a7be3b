"""The Alerts page over a real alerting service (rules evaluated over service reports, history
in SQLite): open alerts with Ack and Silence, silences with Expire and the form's request,
the history's filters and pages, who may press the buttons, escaping, alerting off."""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp

from gateway.alerting.config import AlertingConfig
from gateway.alerting.evaluation import Observations
from gateway.alerting.history import AlertHistory
from gateway.alerting.matchers import Matcher
from gateway.alerting.rules import RuleConfig
from gateway.alerting.service import AlertingMetrics, AlertingService
from gateway.api.alerts import alerts_router
from gateway.config.loading import default_config
from gateway.dashboard.config import DashboardConfig
from gateway.dashboard.router import dashboard_router
from gateway.dashboard.sources import DashboardSources
from gateway.health.services import ServiceReport
from gateway.security.access import AdminAccess
from gateway.security.auth import Authenticator
from gateway.security.auth_config import AuthConfig
from gateway.security.sessions import Sessions
from gateway.service import Gateway
from gateway.store.sqlite import MEMORY, SqliteStore
from tests.gateway.alerting.evaluation_inputs import service
from tests.gateway.dashboard.pages import OPERATOR, READER, row, rows_of, tags

T0 = 1_800_000_000.0
HIGH = {
    "name": "HighErrorRate", "service": "*", "condition": {"error_rate": {"above": 0.05}},
    "severity": "critical", "labels": {"team": "payments"},
    "annotations": {"summary": "{{ service }} fails {{ value }} of requests",
                    "description": "More than {{ threshold }} of requests failed.",
                    "runbook_url": "https://runbooks.example/high-error-rate"},
}  # fmt: skip
ELEVATED = {
    "name": "ElevatedErrors", "service": "*", "condition": {"error_rate": {"above": 0.01}},
    "for": "5m", "severity": "warning",
}  # fmt: skip


class World:
    """An alerting service whose clock and service reports the test sets."""

    def __init__(self, rules: Sequence[dict[str, Any]], store: bool = True) -> None:
        self.now = T0
        self.reports: list[ServiceReport] = []
        self.store = SqliteStore(MEMORY) if store else None

        async def observe() -> Observations:
            return Observations(services=list(self.reports))

        self.alerting = AlertingService(
            AlertingConfig(), [RuleConfig.model_validate(r) for r in rules], observe,
            AlertHistory(self.store), AlertingMetrics.register(CollectorRegistry()),
            external_url="http://gateway:8888", clock=lambda: self.now,
        )  # fmt: skip

    async def failing(self, *names: str, errors: int = 10) -> None:
        """Evaluate with these services failing ``errors`` % of 100 requests."""
        self.reports = [service(n, requests=100, errors=errors) for n in names]
        await self.alerting.evaluate()

    def ids(self, rule: str) -> dict[str, str]:
        """Open alert ids of a rule, by service."""
        return {a.service or "": a.id for a in self.alerting.open_alerts() if a.rule == rule}


def app_for(gateway: Gateway, alerting: AlertingService | None, auth: bool = False) -> ASGIApp:
    sources = DashboardSources(
        DashboardConfig(), gateway.health_api, gateway.slo_tracker, alerting, None,
        lambda: None, None, Sessions(),
    )  # fmt: skip
    app = FastAPI()
    app.include_router(dashboard_router(sources))
    if alerting is not None:
        app.include_router(alerts_router(alerting))
    if not auth:
        return app
    tokens = [{"name": "reader", "token": READER, "scopes": ["read"]},
              {"name": "operator", "token": OPERATOR, "scopes": ["read", "admin"]}]  # fmt: skip
    authenticator = Authenticator(AuthConfig.model_validate({"tokens": tokens}))
    return AdminAccess(app, authenticator, sessions=Sessions())


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    """A gateway that is never started: its health service and SLO tracker are the pages'."""
    return Gateway(default_config({"OTELGATE_DATA_DIR": str(tmp_path)}))


@pytest.fixture
async def world() -> AsyncIterator[World]:
    found = World([HIGH, ELEVATED])
    yield found
    assert found.store is not None
    found.store.close()


async def client(app: ASGIApp, token: str | None = None) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://admin", headers=headers)


@pytest.fixture
async def ui(gateway: Gateway, world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with await client(app_for(gateway, world.alerting)) as found:
        yield found


async def test_open_alerts_show_what_fired_and_ack_changes_the_api(world, ui):
    await world.failing("checkout")
    firing, pending = (
        world.ids("HighErrorRate")["checkout"],
        world.ids("ElevatedErrors")["checkout"],
    )
    page = await ui.get("/ui/alerts")
    assert page.status_code == 200 and page.headers["content-security-policy"]
    assert page.text.count("<h1>") == 1 and 'id="active" data-live' in page.text
    assert page.text.index(f'id="alert-{firing}"') < page.text.index(f'id="alert-{pending}"')
    first = row(page.text, f"alert-{firing}")
    for shown in ("badge firing", "badge critical", "checkout fails 10.0% of requests",
                  "More than 5.0% of requests failed.", 'team="payments"',
                  'href="https://runbooks.example/high-error-rate"', "0.1"):  # fmt: skip
        assert shown in first, shown
    [ack] = tags(page.text, "button", data_post=f"/alerts/{firing}/ack")
    assert json.loads(ack["data-body"]) == {"by": "dashboard"} and "disabled" not in ack
    assert "badge pending" in row(page.text, f"alert-{pending}")
    assert not tags(page.text, "button", data_post=f"/alerts/{pending}/ack")  # pending: no ack
    assert tags(page.text, "a", href=f"/ui/alerts?silence={pending}#new-silence")
    # Pressing Ack sends what the button says; the alert is acknowledged everywhere.
    done = await ui.post(ack["data-post"], json=json.loads(ack["data-body"]))
    assert done.status_code == 200
    assert [a["state"] for a in (await ui.get("/alerts", params={"state": "acknowledged"})).json()[
        "alerts"]] == ["acknowledged"]  # fmt: skip
    again = row((await ui.get("/ui/alerts")).text, f"alert-{firing}")
    assert "badge acknowledged" in again and "by dashboard" in again
    assert "data-post" not in again


async def test_silence_an_alert_from_its_labels_then_expire_it(world, ui):
    await world.failing("checkout")
    alert_id = world.ids("HighErrorRate")["checkout"]
    page = (await ui.get("/ui/alerts")).text
    [link] = tags(page, "a", href=f"/ui/alerts?silence={alert_id}#new-silence")
    form_page = (await ui.get(link["href"].split("#")[0])).text
    assert "Prefilled with the labels of <strong>HighErrorRate</strong>" in form_page
    [textarea] = re.findall(
        r'<textarea id="silence-matchers"[^>]*>(.*?)</textarea>', form_page, re.S
    )
    lines = html.unescape(textarea).splitlines()
    assert lines == ['alertname="HighErrorRate"', 'service="checkout"', 'severity="critical"',
                     'team="payments"']  # fmt: skip
    [form] = tags(form_page, "form", data_api="/silences")
    assert form["data-method"] == "POST"
    [select] = tags(form_page, "select", name="duration")
    assert tags(form_page, "option", value="3600", selected="")  # one hour unless changed
    assert select["id"] == "silence-duration" and 'for="silence-duration"' in form_page
    # What dashboard.js sends when the user keeps the service line only: the textarea's
    # lines as a list, the select's value as text.
    body = {"matchers": lines[1:2], "duration": "7200", "created_by": "alice", "comment": "deploy"}
    created = await ui.post(form["data-api"], json=body)
    assert created.status_code == 201, created.text
    silence_id = created.json()["id"]
    world.now += 5
    await world.alerting.evaluate()  # silences apply from the next evaluation
    page = (await ui.get("/ui/alerts")).text
    listed = row(page, f"silence-{silence_id}")
    assert "badge active" in listed and "alice" in listed and "deploy" in listed
    assert "Silences 2 open alerts" in listed  # both rules' alerts for checkout
    assert "service=&#34;checkout&#34;" in listed
    assert "badge silenced" in row(page, f"alert-{alert_id}")
    [expire] = tags(page, "button", data_delete=f"/silences/{silence_id}")
    assert (await ui.delete(expire["data-delete"])).status_code == 200
    page = (await ui.get("/ui/alerts")).text
    assert "badge expired" in row(page, f"silence-{silence_id}")
    assert not tags(page, "button", data_delete=f"/silences/{silence_id}")
    missing = (await ui.get("/ui/alerts", params={"silence": "nope"})).text
    assert "No alert has the id <code>nope</code>" in missing


async def test_history_filters_and_pages(world, ui):
    await world.failing("alpha", "beta")
    world.now += 10
    await world.failing()  # both resolve: four alerts in the history
    world.now += 7200
    await world.failing(*(f"svc-{i:02}" for i in range(55)))  # 110 open alerts

    async def shown(**params: str) -> tuple[str, list[str]]:
        text = (await ui.get("/ui/alerts", params=params)).text
        return text, re.findall(r'<tr data-alert="([^"]+)"', text)

    text, rows = await shown()
    assert len(rows) == 50 and rows_of(1, 50, 114) in text
    [older] = tags(text, "a", rel="next")
    assert older["href"] == "/ui/alerts?offset=50#history"
    text, rows = await shown(service="alpha")
    assert len(rows) == 2 and rows_of(1, 2, 2) in text and 'value="alpha"' in text
    text, rows = await shown(state="resolved")
    assert len(rows) == 4 and text.count('<span class="badge resolved">') == 4
    assert "<option selected>resolved</option>" in text  # the form keeps what was chosen
    text, rows = await shown(since="1h")
    assert rows_of(1, 50, 110) in text  # the four resolved two hours ago are left out
    text, rows = await shown(severity="warning", state="pending", offset="50")
    assert len(rows) == 5 and rows_of(51, 55, 55) in text
    [newer] = tags(text, "a", rel="prev")
    assert newer["href"] == "/ui/alerts?severity=warning&state=pending#history"
    assert not tags(text, "a", rel="next")
    text, rows = await shown(rule="HighErrorRate", service="svc-07")
    assert len(rows) == 1 and "svc-07" in text
    text, rows = await shown(since="yesterday")
    assert "is neither a duration" in text and rows_of(1, 50, 114) in text
    text, rows = await shown(service="nobody")
    assert rows == [] and "No alert in the history matches." in text


async def test_buttons_are_enabled_for_admin_and_disabled_for_read_only(gateway, world):
    await world.failing("checkout")
    await world.alerting.add_silence([Matcher("service", "checkout")], None, T0 + 600, "bob", "")
    app = app_for(gateway, world.alerting, auth=True)
    async with await client(app) as anonymous:
        assert (await anonymous.get("/ui/alerts")).status_code == 303  # to the login form
    async with await client(app, READER) as reader:
        page = (await reader.get("/ui/alerts")).text
    buttons = [b for b in tags(page, "button") if "data-post" in b or "data-delete" in b]
    assert len(buttons) == 2 and all("disabled" in b for b in buttons)
    assert all(b["title"] == "Needs a token with the admin scope" for b in buttons)
    [submit] = tags(page, "button", type="submit", **{"class": "primary"})
    assert "disabled" in submit and "Creating a silence needs" in page
    async with await client(app, OPERATOR) as operator:
        page = (await operator.get("/ui/alerts")).text
    buttons = [b for b in tags(page, "button") if "data-post" in b or "data-delete" in b]
    assert len(buttons) == 2 and not any("disabled" in b for b in buttons)
    [ack] = [b for b in buttons if "data-post" in b]
    assert json.loads(ack["data-body"]) == {"by": "operator"}
    assert tags(page, "input", name="created_by", value="operator")


async def test_hostile_strings_are_escaped(gateway):
    rule = {**HIGH, "annotations": {"summary": "{{ service }} <b>fails</b>",
                                    "runbook_url": "javascript:alert(1)"}}  # fmt: skip
    world = World([rule])
    hostile = "<script>alert(1)</script>"
    await world.failing(hostile)
    alert_id = world.ids("HighErrorRate")[hostile]
    async with await client(app_for(gateway, world.alerting)) as ui:
        page = (await ui.get("/ui/alerts", params={"silence": alert_id, "service": hostile})).text
    assert "<script>alert" not in page and "<b>fails" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &lt;b&gt;fails&lt;/b&gt;" in page
    assert 'href="javascript:' not in page and "javascript:alert(1)</span>" in page
    assert "service=&#34;&lt;script&gt;alert(1)&lt;/script&gt;&#34;" in page  # the textarea


async def test_alerting_off_says_how_to_turn_it_on(gateway):
    async with await client(app_for(gateway, None)) as ui:
        page = await ui.get("/ui/alerts")
    assert page.status_code == 200
    assert "Alerting is off" in page.text and "<code>alerting.enabled: false</code>" in page.text
    assert "restart the gateway" in page.text and "data-post" not in page.text


async def test_before_the_store_is_open_the_open_alerts_still_show(gateway):
    world = World([HIGH], store=False)
    world.alerting.history.store = SqliteStore(MEMORY)
    await world.failing("checkout")
    world.alerting.history.store = None  # as after the gateway stopped
    async with await client(app_for(gateway, world.alerting)) as ui:
        page = await ui.get("/ui/alerts", params={"silence": "unknown"})
    assert page.status_code == 200
    assert "The history is not available yet" in page.text
    assert f'id="alert-{world.ids("HighErrorRate")["checkout"]}"' in page.text
