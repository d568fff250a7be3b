"""The dashboard in real headless Chromium (Debian's ``chromium`` driven by Playwright) against
the real gateway process, fed by real OpenTelemetry SDK clients.

Every page must load with no console error, no failed request and no request to another
host; screenshots of each page land in ``test-artifacts/screenshots``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import PageProblems, chromium, screenshot, watched_page
from tests.support.gateway_process import GatewayProcess
from tests.support.sdk_traffic import ServiceClient

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

LOG_LINE = "payment declined for order 4242 by the issuer"


def gateway_config() -> dict[str, Any]:
    store_pipeline = {"receivers": ["otlp"], "exporters": ["store"]}
    return {
        "exporters": {"store": None},
        "service": {"pipelines": {"traces": store_pipeline, "logs": store_pipeline}},
        "store": {"flush_interval": "200ms"},
        "health": {
            "window": "20s",
            "bucket": "1s",
            "thresholds": {
                "min_requests": 5,
                "error_rate_degraded": 0.1,
                "error_rate_unhealthy": 0.3,
            },
        },
        "slos": [
            {
                "name": "checkout-availability",
                "service": "checkout",
                "objective": 0.99,
                "sli": {"availability": {}},
            },
            {
                "name": "payments-latency",
                "service": "payments",
                "objective": 0.95,
                "sli": {"latency": {"threshold": "250ms"}},
            },
        ],
        "alerting": {
            "evaluation_interval": "250ms",
            "default_rules": {"enabled": False},
            "rules": [
                {
                    "name": "HighErrorRate",
                    "service": "*",
                    "severity": "critical",
                    "condition": {"error_rate": {"above": 0.3}},
                },
            ],
        },
        "dashboard": {"refresh_interval": "1s"},
    }


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    workdir = tmp_path_factory.mktemp("dashboard")
    with GatewayProcess(gateway_config(), workdir) as process:
        yield process


@pytest.fixture(scope="module")
def traffic(gateway: GatewayProcess) -> Iterator[dict[str, Any]]:
    """checkout (healthy) and payments (healthy until a test makes it fail), one traced
    request across both with a log line and an exception."""
    checkout = ServiceClient(gateway.http_endpoint, "checkout")
    payments = ServiceClient(gateway.http_endpoint, "payments")
    checkout.requests(40)
    payments.requests(40, seconds=0.1)
    trace_id = checkout.checkout_trace(payments, LOG_LINE)
    checkout.flush()
    payments.flush()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the store has the trace and the log
        spans = httpx.get(f"{gateway.admin_url}/traces/{trace_id}", timeout=5)
        logs = httpx.get(f"{gateway.admin_url}/logs", params={"q": "declined"}, timeout=5)
        if spans.status_code == 200 and len(spans.json()["spans"]) == 4 and logs.json()["logs"]:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"the store never had trace {trace_id}:\n{gateway.logs()[-3000:]}")
    yield {"checkout": checkout, "payments": payments, "trace_id": trace_id}
    checkout.close()
    payments.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as found:
        yield found


def clean(problems: PageProblems, gateway: GatewayProcess) -> None:
    """No console error, failed request, HTTP error or foreign host."""
    assert problems.all() == []
    assert problems.requested_hosts <= {f"127.0.0.1:{gateway.admin_port}"}


def visit(page: Page, gateway: GatewayProcess, path: str) -> None:
    response = page.goto(f"{gateway.admin_url}{path}")
    assert response is not None and response.status == 200, path


def test_overview_shows_services_slos_and_components(gateway, traffic, browser):
    for scheme in ("light", "dark"):
        with watched_page(browser, color_scheme=scheme) as (page, problems, _):
            visit(page, gateway, "/")
            expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
            services = page.locator("#services-table tbody tr")
            expect(services.filter(has_text="checkout")).to_have_count(1)
            expect(services.filter(has_text="payments")).to_have_count(1)
            slos = page.locator("#slos")
            expect(slos).to_contain_text("checkout-availability")
            expect(slos).to_contain_text("payments-latency")
            expect(page.locator("#exporters")).to_contain_text("store")
            expect(page.locator("#system svg.sparkline").first).to_be_attached()
            screenshot(page, f"overview-{scheme}")
            clean(problems, gateway)


def test_the_live_view_changes_without_reload_when_a_service_starts_failing(
    gateway, traffic, browser
):
    with watched_page(browser) as (page, problems, _):
        visit(page, gateway, "/")
        row = page.locator('#services-table tr[data-service="payments"]')
        expect(row.locator(".badge")).to_have_text("healthy")
        page.evaluate("window.__noReload = true")
        traffic["payments"].requests(30, failing=30)
        traffic["payments"].flush()
        expect(row.locator(".badge")).to_have_text("unhealthy", timeout=20_000)
        expect(page.locator("#alerts")).to_contain_text("HighErrorRate", timeout=20_000)
        assert page.evaluate("window.__noReload") is True  # the same document: no reload
        screenshot(page, "overview-failing")
        clean(problems, gateway)


def test_the_service_page_draws_red_charts(gateway, traffic, browser):
    with watched_page(browser) as (page, problems, _):
        visit(page, gateway, "/ui/services/checkout")
        charts = page.locator("#charts svg.chart")
        expect(charts).to_have_count(3)
        expect(charts.nth(0)).to_have_attribute("role", "img")
        assert "req/s" in charts.nth(0).inner_html()
        assert "<title>" in charts.nth(2).inner_html()  # tooltips
        expect(page.locator("#service-slos")).to_contain_text("checkout-availability")
        screenshot(page, "service-checkout")
        clean(problems, gateway)
        history = httpx.get(f"{gateway.admin_url}/health/history/checkout", timeout=5).json()
        assert sum(p["requests"] for p in history["points"]) >= 40


def test_log_search_finds_a_known_line_and_links_to_its_trace(gateway, traffic, browser):
    with watched_page(browser) as (page, problems, _):
        visit(page, gateway, "/ui/logs")
        page.get_by_role("searchbox", name="Search").fill("declined issuer")
        page.get_by_role("searchbox", name="Search").press("Enter")
        line = page.locator("tr", has_text=LOG_LINE)
        expect(line).to_have_count(1)
        screenshot(page, "logs-search")
        line.get_by_role("link", name="trace").click()
        expect(page).to_have_url(f"{gateway.admin_url}/ui/traces/{traffic['trace_id']}")
        clean(problems, gateway)


def test_the_trace_page_shows_every_span(gateway, traffic, browser):
    with watched_page(browser) as (page, problems, _):
        visit(page, gateway, f"/ui/traces/{traffic['trace_id']}")
        for name in ("POST /checkout", "call payments", "POST /charge", "card.authorize"):
            expect(
                page.locator(".waterfall .span-name").get_by_text(name, exact=True)
            ).to_have_count(1)
        expect(page.locator(".waterfall svg.bar rect.error")).to_have_count(1)
        expect(page.get_by_text(LOG_LINE).first).to_be_visible()
        screenshot(page, "trace")
        clean(problems, gateway)


def test_ack_from_the_ui_changes_get_alerts(gateway, traffic, browser):
    firing: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while not firing and time.monotonic() < deadline:
        answer = httpx.get(f"{gateway.admin_url}/alerts", params={"state": "firing"}, timeout=5)
        firing = [a for a in answer.json()["alerts"] if a["service"] == "payments"]
        time.sleep(0.2)
    assert firing, "the failing service's alert never fired"
    alert = firing[0]
    with watched_page(browser) as (page, problems, _):
        visit(page, gateway, "/ui/alerts")
        row = page.locator(f"#alert-{alert['id']}")
        row.get_by_role("button", name="Ack").click()
        expect(page.locator("#notice")).to_contain_text("Acknowledged")
        expect(row.locator(".badge").first).to_have_text("acknowledged")
        screenshot(page, "alerts-acknowledged")
        clean(problems, gateway)
    after = httpx.get(f"{gateway.admin_url}/alerts/{alert['id']}", timeout=5).json()
    assert after["state"] == "acknowledged"
    assert after["acknowledged_by"] == "dashboard"  # no login: no name


def test_the_errors_pages_show_the_group_with_its_stack(gateway, traffic, browser):
    with watched_page(browser) as (page, problems, _):
        visit(page, gateway, "/ui/errors")
        page.get_by_role("link", name="ValueError").first.click()
        expect(page.locator("pre.stack").first).to_contain_text("raise_declined")
        expect(page.get_by_role("link", name=re.compile("trace")).first).to_be_visible()
        screenshot(page, "error-group")
        clean(problems, gateway)


PAGES = ("/", "/ui/services/checkout", "/ui/alerts", "/ui/errors", "/ui/logs", "/ui/traces")

# WCAG 2 contrast of every text against the background it is drawn on (the first opaque
# background up the tree): 4.5:1, or 3:1 for large text. Disabled controls are exempt.
CONTRAST_JS = """
() => {
  const rgb = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.9)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const bad = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || el.closest("[disabled], .sr-only, option") || !el.getClientRects().length) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || style.display === "none") continue;
    const svg = el instanceof SVGElement;
    const fg = rgb(svg ? style.fill : style.color);
    if (fg.length < 3) continue;
    const [a, b] = [lum(fg.slice(0, 3)), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    const text = el.textContent.trim().slice(0, 40);
    if (ratio < (large ? 3 : 4.5)) bad.push(`${ratio.toFixed(2)} ${el.tagName} "${text}"`);
  }
  return bad;
}
"""

UNLABELLED_JS = """
() => [...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
  .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute("aria-label")
                 && !e.getAttribute("aria-labelledby"))
  .map((e) => e.outerHTML.slice(0, 80))
"""

# A control's identity survives a live refresh (which replaces the elements themselves).
IDENTITY_JS = """(e) => [e.tagName, e.id, e.getAttribute("href"), e.getAttribute("data-post"),
  e.getAttribute("name"), e.textContent.trim().slice(0, 60)].join("|")"""
FOCUSABLE_JS = f"""
() => [...document.querySelectorAll(
    "a[href], button:not([disabled]), input:not([type=hidden]), select, textarea, summary")]
  .filter((e) => e.getClientRects().length && !e.closest("[hidden]"))
  .map({IDENTITY_JS})
"""
FOCUSED_JS = f"() => ({IDENTITY_JS})(document.activeElement)"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_pages_are_labelled_keyboard_reachable_and_readable(gateway, traffic, browser, scheme):
    for path in PAGES:
        with watched_page(browser, color_scheme=scheme) as (page, problems, _):
            visit(page, gateway, path)
            assert page.locator("h1").count() == 1, path
            assert page.evaluate(UNLABELLED_JS) == [], path
            assert page.evaluate(CONTRAST_JS) == [], (path, scheme)
            controls = page.evaluate(FOCUSABLE_JS)
            wanted = set(controls)
            reached: set[str] = set()
            for _ in range(len(controls) + 5):  # Tab walks every control, in order
                page.keyboard.press("Tab")
                reached.add(page.evaluate(FOCUSED_JS))
            assert wanted - reached == set(), path
            clean(problems, gateway)


def test_the_live_tail_shows_a_new_line_as_it_is_stored(gateway, traffic, browser):
    with watched_page(browser) as (page, problems, _):
        visit(page, gateway, "/ui/logs?service=checkout")
        page.get_by_role("button", name="Live tail").click()
        expect(page.locator("#tail-toggle")).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#tail-state")).to_contain_text("connected")
        traffic["checkout"].logger.warning("inventory low for sku 77 in the tail")
        traffic["checkout"].flush()
        line = page.locator("#logs-body tr", has_text="inventory low for sku 77 in the tail")
        expect(line).to_have_count(1, timeout=15_000)
        expect(line.locator(".badge")).to_have_text("WARN")
        screenshot(page, "logs-tail")
        clean(problems, gateway)


def test_keyboard_focus_survives_a_live_refresh(gateway, traffic, browser):
    with watched_page(browser) as (page, problems, _):
        visit(page, gateway, "/")
        page.locator("#services-table a", has_text="checkout").focus()
        swapped = page.evaluate(
            """() => new Promise((done) => {
                 const seen = (e) => { if (e.detail.changed) done(true); };
                 document.addEventListener("otelgate:refreshed", seen);
                 setTimeout(() => done(false), 10000);
               })"""
        )
        assert swapped, "no live region changed within 10 s"
        assert page.evaluate("document.activeElement.textContent") == "checkout"
        assert page.evaluate("document.activeElement.closest('#services') !== null")
        clean(problems, gateway)
