"""The apprise notifier, through apprise's real ``json://`` service to a local server."""

from __future__ import annotations

import dataclasses
import json
import sys

import pytest

from gateway.alerting.notifiers.apprise_notifier import MISSING, AppriseNotifier
from gateway.alerting.notifiers.base import Notifier
from gateway.alerting.notifiers.config import AppriseConfig
from gateway.alerting.notifiers.render import subject, text_body
from gateway.errors import PermanentError, RetryableError
from tests.gateway.alerting.notifiers.samples import alert, firing_and_resolved, single
from tests.support.ports import free_port
from tests.support.recorder import Recorder


def json_url(server: Recorder, path: str = "/notify") -> str:
    return server.url.replace("http://", "json://") + path


async def test_the_service_gets_the_title_and_body(server: Recorder) -> None:
    notification = firing_and_resolved()
    notifier: Notifier = AppriseNotifier("oncall", AppriseConfig(urls=[json_url(server)]))
    await notifier.send(notification)
    await notifier.close()
    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/notify")
    payload = json.loads(request.body)
    assert payload["title"] == subject(notification)
    assert payload["message"] == text_body(notification).rstrip()  # apprise trims the end
    assert payload["type"] == "failure"  # firing


async def test_a_resolved_notification_is_a_success(server: Recorder) -> None:
    resolved = alert(status="resolved", ends_at=1714564900.0)
    notifier = AppriseNotifier("oncall", AppriseConfig(urls=[json_url(server)]))
    await notifier.send(single(resolved))
    assert json.loads(server.requests[0].body)["type"] == "success"


async def test_every_url_is_notified(server: Recorder) -> None:
    urls = [json_url(server, "/a"), json_url(server, "/b")]
    await AppriseNotifier("oncall", AppriseConfig(urls=urls)).send(firing_and_resolved())
    assert sorted(r.path for r in server.requests) == ["/a", "/b"]


async def test_a_failing_service_is_retryable(server: Recorder) -> None:
    server.answer_with(500, b"down")
    notifier = AppriseNotifier("oncall", AppriseConfig(urls=[json_url(server)]))
    with pytest.raises(RetryableError, match="not every service took the notification"):
        await notifier.send(firing_and_resolved())


async def test_an_unreachable_service_is_retryable() -> None:
    url = f"json://127.0.0.1:{free_port()}/"
    with pytest.raises(RetryableError):
        await AppriseNotifier("oncall", AppriseConfig(urls=[url])).send(firing_and_resolved())


def test_an_unknown_url_is_refused_at_construction_with_its_password_masked() -> None:
    url = "nosuchservice://alerts:s3cret@chat.example/room"
    with pytest.raises(ValueError, match=r"nosuchservice://alerts:\*\*\*@chat\.example") as e:
        AppriseNotifier("oncall", AppriseConfig(urls=["json://127.0.0.1:9/", url]))
    assert "s3cret" not in str(e.value)


def test_messages_show_urls_without_passwords(server: Recorder) -> None:
    url = json_url(server).replace("json://", "json://user:s3cret@")
    notifier = AppriseNotifier("oncall", AppriseConfig(urls=[url]))
    assert "s3cret" not in repr(notifier) and "s3cret" not in " ".join(notifier.targets)


def test_without_apprise_the_error_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "apprise", None)  # import apprise -> ImportError
    with pytest.raises(PermanentError, match="pip install 'otelgate\\[apprise\\]'") as caught:
        AppriseNotifier("oncall", AppriseConfig(urls=["json://127.0.0.1:9/"]))
    assert str(caught.value) == MISSING


async def test_hostile_label_values_reach_the_service_as_text(server: Recorder) -> None:
    hostile = alert(service="<img src=x onerror=alert(1)>")
    notification = dataclasses.replace(single(hostile), external_url="")
    await AppriseNotifier("oncall", AppriseConfig(urls=[json_url(server)])).send(notification)
    assert "<img src=x onerror=alert(1)>" in json.loads(server.requests[0].body)["message"]
