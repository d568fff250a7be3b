"""The Alertmanager notifier against a real Alertmanager: a firing alert is listed active
until its time to live, a resolved one is gone, an invalid one is a permanent error."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import datetime

import pytest

from gateway.alerting.alerts import AlertSnapshot, Notification
from gateway.alerting.notifiers.alertmanager import (
    AlertmanagerNotifier,
    alerts_url,
    postable_alert,
)
from gateway.alerting.notifiers.config import AlertmanagerConfig
from gateway.errors import PermanentError, RetryableError
from tests.gateway.alerting.notifiers.samples import MAY_1_NOON, alert, single
from tests.support.alertmanager_server import AlertmanagerServer
from tests.support.ports import free_port
from tests.support.recorder import Recorder

TTL = 300.0


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AlertmanagerServer]:
    with AlertmanagerServer(tmp_path_factory.mktemp("alertmanager")) as server:
        yield server


def config(endpoint: str) -> AlertmanagerConfig:
    return AlertmanagerConfig.model_validate({"endpoint": endpoint, "timeout": 5})


def seconds(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("http://am:9093", "http://am:9093/api/v2/alerts"),
        ("http://am:9093/", "http://am:9093/api/v2/alerts"),
        ("http://am.example/alertmanager", "http://am.example/alertmanager/api/v2/alerts"),
        ("http://am.example/alertmanager/", "http://am.example/alertmanager/api/v2/alerts"),
    ],
)
def test_the_api_path_is_joined_with_or_without_a_slash(endpoint: str, url: str) -> None:
    assert alerts_url(endpoint) == url
    assert AlertmanagerNotifier("r", config(endpoint), TTL).url == url


def test_a_firing_alert_ends_a_ttl_from_now_a_resolved_one_when_it_did() -> None:
    firing = alert(summary="s")
    assert postable_alert(firing, now=MAY_1_NOON + 10, firing_ttl=TTL) == {
        "labels": dict(firing.labels),
        "annotations": {"summary": "s"},
        "startsAt": "2024-05-01T12:00:00.5Z",
        "endsAt": "2024-05-01T12:05:10Z",
        "generatorURL": "http://gateway.example:8888/alerts/HighErrorRate",
    }
    resolved = alert(status="resolved", ends_at=MAY_1_NOON + 60)
    assert postable_alert(resolved, now=MAY_1_NOON + 3600, firing_ttl=TTL)["endsAt"] == (
        "2024-05-01T12:01:00Z"
    )
    # An end before the start (a clock step) would be refused: it is clamped to the start.
    assert postable_alert(firing, now=MAY_1_NOON - 9999, firing_ttl=TTL)["endsAt"] == (
        "2024-05-01T12:00:00.5Z"
    )
    bare = dataclasses.replace(firing, generator_url="")
    assert "generatorURL" not in postable_alert(bare, now=MAY_1_NOON, firing_ttl=TTL)


async def test_the_body_is_a_list_of_postable_alerts(server: Recorder) -> None:
    notifier = AlertmanagerNotifier(
        "oncall", config(server.url + "/"), TTL, clock=lambda: MAY_1_NOON + 10
    )
    await notifier.send(single(alert()))
    await notifier.close()
    [request] = server.requests
    assert request.path == "/api/v2/alerts"
    assert request.headers["content-type"] == "application/json"
    assert request.body.startswith(b'[{"labels":{"alertname":"HighErrorRate"')


def test_a_ttl_must_be_positive() -> None:
    with pytest.raises(ValueError, match="firing_ttl"):
        AlertmanagerNotifier("oncall", config("http://am:9093"), 0)


async def send(am: AlertmanagerServer, notification: Notification) -> None:
    notifier = AlertmanagerNotifier("oncall", config(am.url), TTL)
    try:
        await notifier.send(notification)
    finally:
        await notifier.close()


async def test_a_firing_alert_is_active_until_resolved(alertmanager: AlertmanagerServer) -> None:
    started = time.time() - 60
    firing = alert("CheckoutDown", "checkout", starts_at=started, summary="checkout is down")
    before = time.time()
    await send(alertmanager, single(firing))
    [listed] = alertmanager.alerts(alertname="CheckoutDown")
    assert listed["labels"] == dict(firing.labels)
    assert listed["labels"]["service"] == "checkout"
    assert listed["annotations"] == {"summary": "checkout is down"}
    assert listed["status"]["state"] == "active"
    assert listed["generatorURL"] == firing.generator_url
    assert abs(seconds(listed["startsAt"]) - started) < 0.002  # Alertmanager shows ms
    assert before + TTL - 0.01 <= seconds(listed["endsAt"]) <= time.time() + TTL + 0.01

    ended = time.time() - 1
    resolved = dataclasses.replace(firing, status="resolved", ends_at=ended)
    await send(alertmanager, single(resolved))
    # Alertmanager's API lists no alert whose end has passed: resolved, it is gone.
    assert alertmanager.alerts(alertname="CheckoutDown") == []


async def test_an_alert_without_labels_is_refused_permanently(
    alertmanager: AlertmanagerServer,
) -> None:
    empty = AlertSnapshot(
        id="x",
        status="firing",
        labels={"alertname": ""},  # Alertmanager drops empty values: no labels left
        annotations={},
        starts_at=time.time(),
        ends_at=None,
        generator_url="",
        fingerprint="0",
    )
    with pytest.raises(PermanentError, match=r"HTTP 400: .*at least one label pair required"):
        await send(alertmanager, _only(empty))


async def test_a_400_still_stored_the_valid_alerts_of_the_request(
    alertmanager: AlertmanagerServer,
) -> None:
    good = alert("PartlyValid", "cart", starts_at=time.time() - 5)
    bad = alert("Bad Name", "cart", extra_labels={"not-a-label-name": "x"})
    notification = dataclasses.replace(single(good), alerts=(good, bad))
    with pytest.raises(PermanentError, match=r"HTTP 400: .*invalid label set"):
        await send(alertmanager, notification)
    [listed] = alertmanager.alerts(alertname="PartlyValid")
    assert listed["status"]["state"] == "active"


async def test_an_unreachable_alertmanager_is_retryable() -> None:
    notifier = AlertmanagerNotifier("oncall", config(f"http://127.0.0.1:{free_port()}"), TTL)
    with pytest.raises(RetryableError, match=r"Alertmanager http://127\.0\.0\.1:\d+/api/v2/alerts"):
        await notifier.send(single(alert()))
    await notifier.close()


def _only(a: AlertSnapshot) -> Notification:
    return Notification(
        receiver="oncall", group_key="g", group_labels={}, alerts=(a,), external_url=""
    )
