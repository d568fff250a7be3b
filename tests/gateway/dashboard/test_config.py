"""The ``dashboard`` section: defaults, and each mistake named with its path."""

from __future__ import annotations

import httpx
import pytest

from gateway.config.issues import ConfigError
from gateway.config.loading import default_config, parse_config
from gateway.service import Gateway

PIPELINE = (
    "receivers: {otlp: {protocols: {http: {}}}}\nexporters: {store: {}}\n"
    "service: {pipelines: {traces: {receivers: [otlp], exporters: [store]}}}\n"
)


def test_defaults():
    dashboard = default_config({}).dashboard
    assert (dashboard.enabled, dashboard.refresh_interval, dashboard.session_max_age) == (
        True, 5.0, 43200.0)  # fmt: skip


def test_durations_are_parsed():
    config = parse_config(
        PIPELINE + "dashboard: {refresh_interval: 2s, session_max_age: 1h}\n", environ={}
    )
    assert (config.dashboard.refresh_interval, config.dashboard.session_max_age) == (2.0, 3600.0)


def test_mistakes_are_named_with_their_paths():
    text = PIPELINE + "dashboard: {refresh_interval: 200ms, session_max_age: 10s, colour: red}\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, environ={})
    assert [(i.path, i.message) for i in info.value.errors] == [
        ("dashboard.refresh_interval", "must be at least 1 (got 0.2)"),
        # The value is not repeated: a key naming a session may hold a secret elsewhere.
        ("dashboard.session_max_age", "must be at least 60 (got a hidden value)"),
        ("dashboard.colour", "unknown key"),
    ]


async def test_disabled_serves_no_pages_but_the_api(tmp_path):

    base = default_config({"OTELGATE_DATA_DIR": str(tmp_path)})
    off = base.model_copy(
        update={"dashboard": base.dashboard.model_copy(update={"enabled": False})}
    )
    transport = httpx.ASGITransport(app=Gateway(off).admin_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
        assert (await client.get("/")).status_code == 404
        assert (await client.get("/ui/static/dashboard.js")).status_code == 404
        assert (await client.get("/health/live")).status_code == 200
