"""The dashboard on ``otelgate demo``'s traffic, in real headless Chromium: every page shows
the demo's services, loads cleanly, and is screenshotted (``OTELGATE_DOCS_IMAGES=docs/images``
writes the PNGs docs/dashboard.md shows)."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import chromium, docs_image, screenshot, watched_page
from tests.support.gateway_process import otelgate_command
from tests.support.ports import free_port

# For the docs' pictures, the demo runs this long first so the charts have something to show.
WARMUP = float(os.environ.get("OTELGATE_DOCS_WARMUP", "0"))
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240 + WARMUP)]
SERVICES = ("frontend", "checkout", "payments")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``otelgate demo`` running until the store holds an error trace; the admin URL."""
    tmp = tmp_path_factory.mktemp("demo")
    admin = f"127.0.0.1:{free_port()}"
    env = {
        "OTELGATE_GRPC_ENDPOINT": f"127.0.0.1:{free_port()}",
        "OTELGATE_HTTP_ENDPOINT": f"127.0.0.1:{free_port()}",
        "OTELGATE_ADMIN_ENDPOINT": admin,
        "OTELGATE_DATA_DIR": str(tmp / "data"),
    }
    process = subprocess.Popen(
        [*otelgate_command(), "demo", "--duration", "900", "--rate", "10"],
        env={**os.environ, **env},
        stdout=(tmp / "demo.out").open("wb"),
        stderr=subprocess.STDOUT,
        cwd=tmp,
    )
    url = f"http://{admin}"
    try:
        deadline = time.monotonic() + 90
        ready = False
        while time.monotonic() < deadline and process.poll() is None and not ready:
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                services = httpx.get(f"{url}/health/services", timeout=2).json()["services"]
                errors = httpx.get(f"{url}/traces", params={"status": "error"}, timeout=2).json()
                logs = httpx.get(f"{url}/logs", params={"q": "declined"}, timeout=2).json()
                groups = httpx.get(f"{url}/errors", timeout=2).json()["groups"]
                seen = {s["name"] for s in services}
                ready = seen >= set(SERVICES) and errors["traces"] and logs["logs"] and groups
            time.sleep(1)
        assert ready, (tmp / "demo.out").read_text(errors="replace")[-3000:]
        time.sleep(WARMUP)
        yield url
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(30)
        if process.poll() is None:
            process.kill()
            process.wait(10)


def shoot(page: Page, name: str) -> None:
    """A screenshot for the test artifacts, and for the docs when asked."""
    screenshot(page, f"demo-{name}")
    docs_image(page, name)


def test_every_page_shows_the_demo(demo):
    trace_id = httpx.get(f"{demo}/traces", params={"status": "error"}, timeout=5).json()["traces"][
        0
    ]["trace_id"]
    group = httpx.get(f"{demo}/errors", timeout=5).json()["groups"][0]["id"]
    pages = {
        "overview": ("/", "#slos :text('checkout-availability')"),
        "service": ("/ui/services/checkout", "#charts"),
        "alerts": ("/ui/alerts", "h1"),
        "errors": ("/ui/errors", "main"),
        "error-group": (f"/ui/errors/{group}", "pre.stack"),
        "logs": ("/ui/logs?q=declined", "main"),
        "traces": ("/ui/traces?errors=1", "main"),
        "trace": (f"/ui/traces/{trace_id}", ".waterfall"),
    }
    with chromium() as browser:
        for name, (path, shows) in pages.items():
            with watched_page(browser, color_scheme="light") as (page, problems, _):
                response = page.goto(f"{demo}{path}")
                assert response is not None and response.status == 200, path
                expect(page.locator(shows).first).to_be_visible()
                if name in ("overview", "errors", "logs", "traces"):
                    text = page.locator("main").inner_text()
                    assert any(s in text for s in SERVICES), (name, text[:500])
                page.wait_for_timeout(300)
                shoot(page, name)
                assert problems.all() == [], (name, problems.all())
                hosts = {re.sub(r"^https?://", "", demo)}
                assert problems.requested_hosts <= hosts, problems.requested_hosts
