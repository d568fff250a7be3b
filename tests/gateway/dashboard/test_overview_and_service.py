"""The overview and service pages through the gateway's real admin application (not started:
no store reader yet), fed by real OTLP batches observed by the health tracker."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.config.loading import default_config
from gateway.dashboard.service_page import red_charts
from gateway.health.history import MinutePoint
from gateway.otlp.batch import Batch, Signal
from gateway.service import Gateway
from tests.support.otlp_samples import sample_request


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    return Gateway(default_config({"OTELGATE_DATA_DIR": str(tmp_path)}))


@pytest.fixture
async def admin(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=gateway.admin_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
        yield client


async def test_an_empty_overview_says_how_to_start(admin):
    page = await admin.get("/")
    assert page.status_code == 200
    assert "No service has sent anything yet" in page.text
    assert "No SLOs defined" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")


async def test_a_service_row_links_to_its_page_with_three_charts(gateway, admin):
    request = sample_request(Signal.TRACES, 5, service="check<out>")
    gateway.health.observe(Batch(Signal.TRACES, request, 5))
    overview = (await admin.get("/")).text
    assert 'href="/ui/services/check%3Cout%3E">check&lt;out&gt;</a>' in overview
    page = await admin.get("/ui/services/check%3Cout%3E")
    assert page.status_code == 200
    assert len(re.findall(r'<svg [^>]*class="chart"', page.text)) == 3
    assert "The embedded store is off" in page.text  # no reader before the gateway starts
    assert "<out>" not in page.text


async def test_an_unknown_service_is_a_404_page(admin):
    page = await admin.get("/ui/services/nobody")
    assert page.status_code == 404 and "No service named <strong>nobody</strong>" in page.text


def test_the_current_minute_rate_is_over_the_part_that_passed():
    now = 1_800_000_030.0  # 30 s into a minute
    points = [
        MinutePoint(now - 90, 120, 6, 0.1, 0.2, 0.3),  # a whole minute: 2 req/s
        MinutePoint(now - 30, 60, 0, 0.1, 0.1, 0.1),  # its first 30 s: 2 req/s, not 1
    ]
    charts = red_charts("svc", points, now)
    tooltips = re.findall(r"<title>([^<]*requests/s [^<]*)</title>", charts["rate"])
    assert [t.rsplit(" · ", 1)[1] for t in tooltips] == ["requests/s 2 req/s"] * 2, tooltips
    errors = re.findall(r"<title>([^<]*error rate [^<]*)</title>", charts["errors"])
    assert [t.rsplit(" · ", 1)[1] for t in errors] == ["error rate 5%", "error rate 0%"]
