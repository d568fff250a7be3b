"""Alerting on the real gateway process: acknowledgement stops escalation, silences
suppress, ``keep_firing_for`` absorbs flapping, a restart neither loses nor repeats a
notification, and a reload keeps the running rules when the new ones are broken.

The condition is ``log_count`` over error logs the SDK ships (stdlib logging through the
OTLP/HTTP log exporter), so each test decides exactly when it holds.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.alerting import LogSender, every, payloads, wait_for
from tests.support.gateway_process import GatewayProcess
from tests.support.recorder import Recorder, recording_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


@pytest.fixture
def webhook() -> Iterator[Recorder]:
    with recording_server() as recorder:
        yield recorder


def error_logs_rule(**changes: Any) -> dict[str, Any]:
    rule = {
        "name": "ErrorLogs",
        "service": "*",
        "condition": {"log_count": {"severity": "error", "above": 0, "window": "1s"}},
        "severity": "critical",
        "keep_firing_for": "30s",
    }
    return {**rule, **changes}


def config(webhook: str, rules: list[dict[str, Any]], **alerting: Any) -> dict[str, Any]:
    route = {
        "receiver": "ops",
        "group_by": ["alertname", "service"],
        "group_wait": "300ms",
        "group_interval": "1s",
        "repeat_interval": "1h",
    }
    route.update(alerting.pop("route", {}))
    return {
        "exporters": {"file/logs": {"path": "logs.jsonl"}},
        "service": {"pipelines": {"logs": {"receivers": ["otlp"], "exporters": ["file/logs"]}}},
        "alerting": {
            "evaluation_interval": "250ms",
            "default_rules": {"enabled": False},
            "rules": rules,
            "receivers": {
                "ops": {"webhook": {"url": f"{webhook}/ops"}},
                "pager": {"webhook": {"url": f"{webhook}/pager"}},
            },
            "route": route,
            "delivery": {"initial_interval": "200ms", "max_interval": "1s"},
            **alerting,
        },
    }


def open_alerts(gateway: GatewayProcess, **params: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{gateway.admin_url}/alerts", params=params, timeout=5)
    answer.raise_for_status()
    return list(answer.json()["alerts"])


def firing_for(gateway: GatewayProcess, service: str) -> dict[str, Any]:
    found = wait_for(lambda: open_alerts(gateway, service=service, state="firing"), timeout=20)
    return dict(found[0])


def notified(webhook: Recorder, path: str, service: str, status: str) -> list[dict[str, Any]]:
    return [
        body
        for _, body in payloads(webhook, path)
        if body["status"] == status and body["groupLabels"].get("service") == service
    ]


def test_acknowledging_stops_escalation(
    start_gateway: Callable[..., GatewayProcess], webhook: Recorder
) -> None:
    escalation = [{"after": "2s", "receivers": ["pager"]}]
    gateway = start_gateway(
        config(webhook.url, [error_logs_rule()], route={"escalation": escalation})
    )
    senders = [LogSender(gateway.http_endpoint, name) for name in ("acked", "ignored")]
    try:
        for sender in senders:
            sender.error()
        acked = firing_for(gateway, "acked")
        answer = httpx.post(f"{gateway.admin_url}/alerts/{acked['id']}/ack",
                            json={"by": "alice", "comment": "looking"}, timeout=5)  # fmt: skip
        assert answer.status_code == 200, answer.text
        assert answer.json()["state"] == "acknowledged"
        firing_for(gateway, "ignored")
        pages = wait_for(lambda: [b for _, b in payloads(webhook, "/pager")], timeout=15)
        time.sleep(1.5)  # a wrongly escalated acknowledged alert would show up by now
    finally:
        for sender in senders:
            sender.close()
    pages = [b for _, b in payloads(webhook, "/pager")]
    assert [p["groupLabels"]["service"] for p in pages] == ["ignored"]
    assert wait_for(lambda: notified(webhook, "/ops", "acked", "firing"), timeout=5)
    [acked_now] = open_alerts(gateway, service="acked")
    assert acked_now["state"] == "acknowledged" and acked_now["acknowledged_by"] == "alice"
    timeline = httpx.get(f"{gateway.admin_url}/alerts/{acked['id']}").json()["timeline"]
    assert any(e["kind"] == "acknowledged" and e["detail"]["by"] == "alice" for e in timeline)


def test_a_silence_suppresses_until_it_is_expired(
    start_gateway: Callable[..., GatewayProcess], webhook: Recorder
) -> None:
    gateway = start_gateway(config(webhook.url, [error_logs_rule()]))
    silence = httpx.post(f"{gateway.admin_url}/silences", json={
        "matchers": ['service="quiet"'], "duration": 60, "created_by": "bob",
        "comment": "maintenance"}, timeout=5)  # fmt: skip
    assert silence.status_code == 201, silence.text
    sender = LogSender(gateway.http_endpoint, "quiet")
    try:
        sender.error()
        alert = firing_for(gateway, "quiet")
        wait_for(lambda: open_alerts(gateway, service="quiet")[0]["silenced_by"], timeout=5)
        time.sleep(2.0)  # group_wait and an interval pass
        assert not notified(webhook, "/ops", "quiet", "firing")
        # A time without a zone is UTC, whatever the server's local time.
        until = (datetime.now(UTC) + timedelta(minutes=5)).replace(tzinfo=None, microsecond=0)
        other = httpx.post(f"{gateway.admin_url}/silences", json={
            "matchers": ['service="elsewhere"'], "ends_at": until.isoformat(),
            "created_by": "bob"}, timeout=5)  # fmt: skip
        assert other.status_code == 201, other.text
        assert other.json()["ends_at"] == until.isoformat() + "Z"
        broken = {"matchers": ['service=~"("'], "duration": 60, "created_by": "bob"}
        bad = httpx.post(f"{gateway.admin_url}/silences", json=broken, timeout=5)
        assert bad.status_code == 422 and "matchers[0]" in bad.text
        listed = httpx.get(f"{gateway.admin_url}/silences").json()["silences"]
        assert [s["state"] for s in listed] == ["active", "active"]
        gone = httpx.delete(f"{gateway.admin_url}/silences/{silence.json()['id']}", timeout=5)
        assert gone.status_code == 200 and gone.json()["state"] == "expired"
        told = wait_for(lambda: notified(webhook, "/ops", "quiet", "firing"), timeout=10)
        assert told[0]["alerts"][0]["generatorURL"].endswith(alert["id"])
    finally:
        sender.close()


def test_flapping_with_keep_firing_for_notifies_once_each_way(
    start_gateway: Callable[..., GatewayProcess], webhook: Recorder
) -> None:
    rule = error_logs_rule(keep_firing_for="4s")
    gateway = start_gateway(config(webhook.url, [rule]))
    sender = LogSender(gateway.http_endpoint, "flappy")
    try:
        for _ in range(6):  # holds ~1 s, then not for ~1 s, six times
            sender.error()
            time.sleep(2.0)
        wait_for(lambda: notified(webhook, "/ops", "flappy", "resolved"), timeout=20)
        time.sleep(1.5)
    finally:
        sender.close()
    assert len(notified(webhook, "/ops", "flappy", "firing")) == 1
    assert len(notified(webhook, "/ops", "flappy", "resolved")) == 1
    [episode] = httpx.get(f"{gateway.admin_url}/alerts/history",
                          params={"service": "flappy"}).json()["alerts"]  # fmt: skip
    assert episode["state"] == "resolved"


def test_restart_while_firing_neither_loses_nor_repeats_a_notification(
    start_gateway: Callable[..., GatewayProcess], webhook: Recorder
) -> None:
    # No keep_firing_for: across the restarts only alerting.restart_grace (default 1m) keeps
    # the alert firing while the new process's log counts start from nothing.
    webhook.answer_with(503, b"try later")
    gateway = start_gateway(config(webhook.url, [error_logs_rule(keep_firing_for="0s")]))
    sender = LogSender(gateway.http_endpoint, "restarted")
    try:
        with every(0.3, sender.error):  # the condition holds until the kill
            alert = firing_for(gateway, "restarted")
            wait_for(lambda: payloads(webhook, "/ops"), timeout=15)  # tried, refused
            assert gateway.proc is not None
            gateway.proc.send_signal(signal.SIGKILL)  # the notification is only in the outbox
            gateway.proc.wait(10)
    finally:
        sender.close()
    webhook.reset()  # answers 200 from now on
    gateway.start()
    delivered = wait_for(lambda: notified(webhook, "/ops", "restarted", "firing"), timeout=20)
    assert delivered[0]["alerts"][0]["generatorURL"].endswith(alert["id"])
    assert gateway.stop() == 0  # a clean restart after the delivery: nothing is sent again
    gateway.start()
    time.sleep(3.0)  # several evaluations and group intervals
    assert len(notified(webhook, "/ops", "restarted", "firing")) == 1
    assert not notified(webhook, "/ops", "restarted", "resolved")
    [still] = open_alerts(gateway, service="restarted")
    assert still["id"] == alert["id"] and still["state"] == "firing"
    history = httpx.get(f"{gateway.admin_url}/alerts/history").json()
    assert [a["id"] for a in history["alerts"]] == [alert["id"]]
    timeline = httpx.get(f"{gateway.admin_url}/alerts/{alert['id']}").json()["timeline"]
    kinds = [e["kind"] for e in timeline]
    assert kinds[0] == "firing" and "notification_retried" in kinds
    assert kinds.count("notification_sent") == 1


def test_reload_keeps_the_rules_when_the_new_file_is_broken(
    start_gateway: Callable[..., GatewayProcess], webhook: Recorder, tmp_path: Path
) -> None:
    rule_file = tmp_path / "rules" / "errors.yaml"
    rule_file.parent.mkdir()
    rule_file.write_text(yaml.safe_dump({"rules": [error_logs_rule(keep_firing_for="1s")]}))
    pattern = str(tmp_path / "rules" / "*.yaml")
    gateway = start_gateway(config(webhook.url, [], rule_files=[pattern]))
    sender = LogSender(gateway.http_endpoint, "reloaded")
    try:
        sender.error()
        alert = firing_for(gateway, "reloaded")

        rule_file.write_text(yaml.safe_dump({"rules": [{"name": "ErrorLogs", "condition": {
            "log_counts": {"above": 0}}}]}))  # fmt: skip
        answer = httpx.post(f"{gateway.admin_url}/-/reload", timeout=10)
        assert answer.status_code == 400
        [error] = answer.json()["errors"]
        assert str(rule_file) in error and "unknown condition 'log_counts'" in error
        assert gateway.metric("otelgate_config_last_reload_successful") == 0
        assert "reload refused" in gateway.logs() and str(rule_file) in gateway.logs()
        rules = httpx.get(f"{gateway.admin_url}/alerts/rules").json()["rules"]
        assert [r["name"] for r in rules] == ["ErrorLogs"]
        assert open_alerts(gateway, service="reloaded")[0]["id"] == alert["id"]

        changed = error_logs_rule(keep_firing_for="1s")
        changed["condition"] = {"log_count": {"severity": "error", "above": 1000, "window": "1s"}}
        rule_file.write_text(yaml.safe_dump({"rules": [changed]}))
        assert gateway.proc is not None
        gateway.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: gateway.metric("otelgate_config_last_reload_successful") == 1, 10)
        rules = httpx.get(f"{gateway.admin_url}/alerts/rules").json()["rules"]
        assert rules[0]["condition"]["log_count"]["above"] == 1000
        wait_for(lambda: not open_alerts(gateway, service="reloaded"), timeout=10)
        sender.error()  # under the new threshold: nothing fires
        time.sleep(1.0)
        assert not open_alerts(gateway, service="reloaded")
    finally:
        sender.close()
