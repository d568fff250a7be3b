"""A receiver's configuration becomes one notifier per integration."""

from __future__ import annotations

import sys

import httpx
import pytest

from gateway.alerting.notifiers.alertmanager import AlertmanagerNotifier
from gateway.alerting.notifiers.build import build_notifiers
from gateway.alerting.notifiers.config import ReceiverConfig
from gateway.errors import PermanentError

EVERYTHING = {
    "webhook": {"url": "http://hooks.example/alerts"},
    "alertmanager": {"endpoint": "http://am.example:9093"},
    "email": {"smtp_host": "smtp.example", "from": "a@example.com", "to": "b@example.com"},
    "apprise": {"urls": ["json://chat.example/"]},
}


async def test_one_notifier_per_integration_in_a_fixed_order() -> None:
    config = ReceiverConfig.model_validate(EVERYTHING)
    async with httpx.AsyncClient() as client:
        notifiers = build_notifiers("team-a", config, firing_ttl=600, client=client)
        assert [n.kind for n in notifiers] == ["webhook", "alertmanager", "email", "apprise"]
        assert {n.receiver for n in notifiers} == {"team-a"}
        alertmanager = notifiers[1]
        assert isinstance(alertmanager, AlertmanagerNotifier)
        assert alertmanager.firing_ttl == 600
        assert alertmanager.url == "http://am.example:9093/api/v2/alerts"
        for notifier in notifiers:
            await notifier.close()
        assert not client.is_closed


async def test_only_the_configured_integrations() -> None:
    config = ReceiverConfig.model_validate({"webhook": EVERYTHING["webhook"]})
    [notifier] = build_notifiers("team-a", config, firing_ttl=600)
    assert notifier.kind == "webhook"
    await notifier.close()


def test_a_bad_apprise_url_fails_the_build() -> None:
    config = ReceiverConfig.model_validate({"apprise": {"urls": ["nope://x"]}})
    with pytest.raises(ValueError, match="apprise does not understand the URL nope://x"):
        build_notifiers("team-a", config, firing_ttl=600)


def test_a_missing_apprise_fails_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "apprise", None)
    config = ReceiverConfig.model_validate({"apprise": EVERYTHING["apprise"]})
    with pytest.raises(PermanentError, match="apprise is not installed"):
        build_notifiers("team-a", config, firing_ttl=600)
