"""Alerting end to end: a service's error rate crosses 5 % and falls back, and every kind of
receiver hears about it — a real Alertmanager (Debian's ``prometheus-alertmanager``), a
webhook (Alertmanager's v4 payload) and an SMTP server (aiosmtpd).

The service is the OpenTelemetry SDK sending SERVER spans to the real gateway process. The
test measures the time from the first failing span to the first notification delivered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.alerting import SpanSender, every, payloads, smtp_server, wait_for
from tests.support.alertmanager_server import AlertmanagerServer
from tests.support.gateway_process import GatewayProcess
from tests.support.recorder import Recorder, recording_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

LATENCY_BOUND = 15.0  # seconds; the users asked for under 30 s for critical alerts


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[AlertmanagerServer]:
    with AlertmanagerServer(tmp_path / "alertmanager") as running:
        yield running


@pytest.fixture
def webhook() -> Iterator[Recorder]:
    with recording_server() as recorder:
        yield recorder


def alerting_config(webhook: str, smtp_port: int, alertmanager: str) -> dict[str, Any]:
    return {
        "exporters": {"file/traces": {"path": "traces.jsonl"}},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file/traces"]}}},
        "health": {"window": "6s", "bucket": "1s", "thresholds": {"min_requests": 5}},
        "alerting": {
            "evaluation_interval": "500ms",
            "default_rules": {"enabled": False},
            "rules": [
                {
                    "name": "HighErrorRate",
                    "service": "*",
                    "condition": {"error_rate": {"above": 0.05, "min_requests": 5}},
                    "for": "1s",
                    "severity": "critical",
                    "labels": {"team": "payments"},
                    "annotations": {
                        "summary": "{{ service }}: error rate {{ value }} above {{ threshold }}",
                        "runbook_url": "docs/runbooks.md#higherrorrate",
                    },
                }
            ],
            "receivers": {
                "ops": {
                    "webhook": {"url": f"{webhook}/hook", "headers": {"X-Team": "payments"}},
                    "email": {
                        "smtp_host": "127.0.0.1",
                        "port": smtp_port,
                        "starttls": False,
                        "from": "otelgate@example.com",
                        "to": ["oncall@example.com"],
                    },
                },
                "am": {"alertmanager": {"endpoint": alertmanager}},
            },
            "route": {
                "receiver": "ops",
                "group_by": ["alertname", "service"],
                "group_wait": "1s",
                "group_interval": "2s",
                "repeat_interval": "1h",
                "routes": [{"receiver": "am", "continue": True}, {"receiver": "ops"}],
            },
        },
    }


def test_error_rate_alert_fires_and_resolves_everywhere(
    start_gateway: Callable[..., GatewayProcess],
    alertmanager: AlertmanagerServer,
    webhook: Recorder,
) -> None:
    with smtp_server() as (mailbox, smtp_port):
        gateway = start_gateway(alerting_config(webhook.url, smtp_port, alertmanager.url))
        checkout = SpanSender(gateway.http_endpoint, "checkout")
        try:
            checkout.send(20)  # healthy traffic first: nothing fires
            time.sleep(1.5)
            assert httpx.get(f"{gateway.admin_url}/alerts").json()["count"] == 0

            started = time.time()
            checkout.send(20, errors=5)  # 25 % of the window's requests fail
            hooks = wait_for(lambda: payloads(webhook, "/hook"), timeout=30)
            first, body = hooks[0]
            latency = first.at - started
            print(f"first failing span -> webhook delivered: {latency:.2f}s")
            assert latency < LATENCY_BOUND

            # The webhook: Alertmanager's v4 payload, the configured header.
            assert first.headers["x-team"] == "payments"
            assert body["version"] == "4" and body["status"] == "firing"
            assert body["receiver"] == "ops"
            assert body["groupLabels"] == {"alertname": "HighErrorRate", "service": "checkout"}
            [alert] = body["alerts"]
            assert alert["labels"] == {
                "alertname": "HighErrorRate", "service": "checkout", "severity": "critical",
                "team": "payments",
            }  # fmt: skip
            assert alert["annotations"]["summary"].startswith("checkout: error rate ")
            assert alert["annotations"]["summary"].endswith("above 5.0%")
            assert alert["endsAt"] == "0001-01-01T00:00:00Z"

            # The API: one firing alert with its timeline.
            [listed] = httpx.get(f"{gateway.admin_url}/alerts").json()["alerts"]
            assert listed["state"] == "firing" and listed["service"] == "checkout"
            assert alert["generatorURL"].endswith(f"/alerts/{listed['id']}")
            since_condition = first.at - _epoch(listed["started_at"])
            print(f"condition held -> webhook delivered: {since_condition:.2f}s")

            # Alertmanager lists it, with the rule's name and the service.
            found = wait_for(
                lambda: alertmanager.alerts(alertname="HighErrorRate", service="checkout"),
                timeout=15,
            )
            assert found[0]["status"]["state"] == "active"
            assert found[0]["labels"]["team"] == "payments"

            # The mail.
            wait_for(lambda: mailbox.messages, timeout=15)
            _, mail = mailbox.messages[0]
            assert "FIRING" in str(mail["Subject"]) and "HighErrorRate" in str(mail["Subject"])
            assert mail["To"] == "oncall@example.com"
            assert {part.get_content_type() for part in mail.iter_parts()} == {
                "text/plain", "text/html",
            }  # fmt: skip

            # The errors leave the 6 s window while healthy traffic goes on: resolved.
            with every(0.3, lambda: checkout.send(3)):
                resolved = wait_for(
                    lambda: [b for _, b in payloads(webhook, "/hook") if b["status"] == "resolved"],
                    timeout=40,
                )
                assert resolved[0]["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
                wait_for(lambda: not alertmanager.alerts(alertname="HighErrorRate"), timeout=15)
                wait_for(lambda: any("RESOLVED" in s for s in mailbox.subjects()), timeout=15)
        finally:
            checkout.close()

        firing = [b for _, b in payloads(webhook, "/hook") if b["status"] == "firing"]
        assert len(firing) == 1, "one firing notification for one episode"
        detail = httpx.get(f"{gateway.admin_url}/alerts/{listed['id']}").json()
        kinds = [entry["kind"] for entry in detail["timeline"]]
        assert kinds[:2] == ["pending", "firing"] and "resolved" in kinds
        assert "notification_sent" in kinds
        assert (
            gateway.metric(
                "otelgate_notifications_total",
                receiver="ops",
                integration="webhook",
                outcome="sent",
            )
            == 2
        )
        health = httpx.get(f"{gateway.admin_url}/health").json()["alerting"]
        hooks_health = [n for n in health["notifications"] if n["integration"] == "webhook"]
        assert hooks_health[0]["sent"] == 2 and hooks_health[0]["waiting"] == 0


def _epoch(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()
