"""The webhook notifier: Alertmanager's version 4 payload, exactly, to a real local server, and
the answers classified (2xx done; 429/5xx retryable with Retry-After; other 4xx permanent)."""

from __future__ import annotations

import dataclasses
import email.utils
import json
import socket
import time

import httpx
import pytest

from gateway.alerting.alerts import fingerprint
from gateway.alerting.notifiers.base import Notifier
from gateway.alerting.notifiers.config import WebhookConfig
from gateway.alerting.notifiers.webhook import WebhookNotifier, webhook_payload
from gateway.errors import PermanentError, RetryableError, ThrottledError
from tests.gateway.alerting.notifiers.samples import alert, firing_and_resolved, single
from tests.support.ports import free_port
from tests.support.recorder import Recorder

FIRING_LABELS = {"alertname": "HighErrorRate", "service": "checkout", "severity": "critical"}
RESOLVED_LABELS = {**FIRING_LABELS, "region": "eu"}
# What Alertmanager 0.25+ would POST for samples.firing_and_resolved() (notify/webhook and
# template.Data; field order as Go's encoding/json writes them).
EXPECTED = {
    "receiver": "oncall",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": FIRING_LABELS,
            "annotations": {
                "summary": "Error rate above 5%",
                "description": "5xx ratio of checkout is 12.5% over 5m.",
                "runbook_url": "https://runbooks.example/high-error-rate",
            },
            "startsAt": "2024-05-01T12:00:00.5Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://gateway.example:8888/alerts/HighErrorRate",
            "fingerprint": fingerprint(FIRING_LABELS),
        },
        {
            "status": "resolved",
            "labels": RESOLVED_LABELS,
            "annotations": {"summary": "Error rate above 5%"},
            "startsAt": "2024-05-01T11:50:00Z",
            "endsAt": "2024-05-01T11:58:59.75Z",
            "generatorURL": "http://gateway.example:8888/alerts/HighErrorRate",
            "fingerprint": fingerprint(RESOLVED_LABELS),
        },
    ],
    "groupLabels": {"alertname": "HighErrorRate"},
    "commonLabels": FIRING_LABELS,
    "commonAnnotations": {"summary": "Error rate above 5%"},
    "externalURL": "http://gateway.example:8888/alerts",
    "version": "4",
    "groupKey": '{}:{alertname="HighErrorRate"}',
    "truncatedAlerts": 0,
}


def config(url: str, **extra: object) -> WebhookConfig:
    return WebhookConfig.model_validate({"url": url, **extra})


def test_the_payload_is_alertmanagers_version_4() -> None:
    payload = webhook_payload(firing_and_resolved())
    assert payload == EXPECTED
    assert list(payload) == list(EXPECTED)
    assert list(payload["alerts"][0]) == list(EXPECTED["alerts"][0])  # type: ignore[index]


def test_max_alerts_truncates_and_counts_like_alertmanager() -> None:
    notification = firing_and_resolved()
    payload = webhook_payload(notification, max_alerts=1)
    assert payload["truncatedAlerts"] == 1
    assert [a["status"] for a in payload["alerts"]] == ["firing"]
    # As in Alertmanager, the rest describes the alerts sent, not the ones cut.
    assert payload["commonLabels"] == FIRING_LABELS
    assert payload["commonAnnotations"] == EXPECTED["alerts"][0]["annotations"]  # type: ignore[index]
    assert webhook_payload(notification, max_alerts=2)["truncatedAlerts"] == 0
    assert webhook_payload(notification, max_alerts=5) == EXPECTED


async def test_posts_the_payload_with_the_configured_headers(server: Recorder) -> None:
    notifier: Notifier = WebhookNotifier(
        "oncall",
        config(
            f"{server.url}/hooks/alerts?team=payments",
            headers={"Authorization": "Bearer abc", "content-type": "text/plain"},
        ),
    )
    try:
        await notifier.send(firing_and_resolved())
    finally:
        await notifier.close()
    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/hooks/alerts?team=payments")
    assert request.body == json.dumps(EXPECTED, separators=(",", ":")).encode()  # in order
    assert request.headers["content-type"] == "application/json"  # not the configured one
    assert request.headers["authorization"] == "Bearer abc"
    assert request.headers["user-agent"].startswith("otelgate/")
    assert request.headers["content-length"] == str(len(request.body))


async def test_max_alerts_from_the_config_reaches_the_wire(server: Recorder) -> None:
    alerts = tuple(alert(service=f"svc-{i}") for i in range(3))
    notification = dataclasses.replace(single(alerts[0]), alerts=alerts)
    notifier = WebhookNotifier("oncall", config(server.url, max_alerts=2))
    await notifier.send(notification)
    await notifier.close()
    payload = json.loads(server.requests[0].body)
    assert payload["truncatedAlerts"] == 1
    assert [a["labels"]["service"] for a in payload["alerts"]] == ["svc-0", "svc-1"]
    assert payload["commonLabels"] == {"alertname": "HighErrorRate", "severity": "critical"}


async def answer(server: Recorder, status: int, body: bytes = b"", **headers: str) -> None:
    """Send a notification to ``server`` answering ``status``; raise what the notifier did."""
    server.answer_with(status, body, **headers)
    notifier = WebhookNotifier("oncall", config(server.url))
    try:
        await notifier.send(firing_and_resolved())
    finally:
        await notifier.close()


async def test_a_2xx_is_done(server: Recorder) -> None:
    for status in (200, 202, 204):
        await answer(server, status)
    assert len(server.requests) == 3


async def test_a_503_with_retry_after_throttles_for_that_long(server: Recorder) -> None:
    with pytest.raises(ThrottledError, match="HTTP 503: busy") as caught:
        await answer(server, 503, b"busy", Retry_After="7")
    assert caught.value.retry_after == 7


async def test_a_429_with_an_http_date_throttles_until_then(server: Recorder) -> None:
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    with pytest.raises(ThrottledError) as caught:
        await answer(server, 429, Retry_After=later)
    assert caught.value.retry_after is not None
    assert 25 <= caught.value.retry_after <= 31


async def test_other_5xx_are_retryable_without_a_delay(server: Recorder) -> None:
    with pytest.raises(RetryableError) as caught:
        await answer(server, 500, b"oops")
    assert not isinstance(caught.value, ThrottledError)
    assert caught.value.retry_after is None


async def test_a_4xx_is_permanent_and_quotes_the_body(server: Recorder) -> None:
    with pytest.raises(PermanentError, match=r"HTTP 400: unknown field 'alerts'"):
        await answer(server, 400, b"unknown field 'alerts'" + b"x" * 5000)
    with pytest.raises(PermanentError, match=r"HTTP 404: Not Found$"):
        await answer(server, 404)


async def test_a_refused_connection_is_retryable() -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    notifier = WebhookNotifier("oncall", config(url))
    with pytest.raises(RetryableError, match="ConnectError"):
        await notifier.send(firing_and_resolved())
    await notifier.close()


async def test_a_server_that_never_answers_times_out_retryably() -> None:
    with socket.socket() as listener:  # accepts (backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
        notifier = WebhookNotifier("oncall", config(url, timeout=0.3))
        started = time.monotonic()
        with pytest.raises(RetryableError, match=r"timed out after 0\.3s"):
            await notifier.send(firing_and_resolved())
        assert time.monotonic() - started < 3
        await notifier.close()


async def test_the_timeout_holds_with_a_shared_client_of_longer_timeouts() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
        async with httpx.AsyncClient(timeout=60) as client:
            notifier = WebhookNotifier("oncall", config(url, timeout=0.3), client)
            with pytest.raises(RetryableError, match=r"timed out after 0\.3s"):
                await notifier.send(firing_and_resolved())
            await notifier.close()
            assert not client.is_closed  # a given client is the caller's to close


async def test_errors_show_the_url_without_credentials(server: Recorder) -> None:
    url = server.url.replace("http://", "http://hook:s3cret@") + "/h?token=t0ken"
    notifier = WebhookNotifier("oncall", config(url))
    server.answer_with(403, b"no")
    with pytest.raises(PermanentError) as caught:
        await notifier.send(firing_and_resolved())
    await notifier.close()
    assert "s3cret" not in str(caught.value) and "t0ken" not in str(caught.value)
    assert "s3cret" not in repr(notifier)
