"""The webhook integration: Alertmanager's webhook payload (version 4), POSTed as JSON.

The payload is the one documented at
https://prometheus.io/docs/alerting/latest/configuration/#webhook_config, with the fields in the
order Alertmanager writes them (``notify/webhook/webhook.go``: ``template.Data``, then
``version``, ``groupKey``, ``truncatedAlerts``), so a receiver written for Alertmanager reads it
unchanged. As in Alertmanager, ``max_alerts`` cuts the list *before* the rest is computed:
``status``, ``commonLabels`` and ``commonAnnotations`` describe the alerts that are sent.

Differences: times are UTC; the receiver name is sent as is (Alertmanager passes it through
``regexp.QuoteMeta``, so ``team.a`` arrives as ``team\\.a`` from it); ``fingerprint`` is the
gateway's (:func:`gateway.alerting.alerts.fingerprint`), not Alertmanager's FNV hash.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx

from gateway.alerting.alerts import AlertSnapshot, Notification
from gateway.alerting.notifiers.config import WebhookConfig
from gateway.alerting.notifiers.wire import ZERO_TIME, JsonPoster, rfc3339
from gateway.redact import redact_url

VERSION = "4"


def alert_payload(alert: AlertSnapshot) -> dict[str, Any]:
    """One alert as Alertmanager's webhook shows it (``template.Alert``)."""
    return {
        "status": alert.status,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": rfc3339(alert.starts_at),
        "endsAt": ZERO_TIME if alert.ends_at is None else rfc3339(alert.ends_at),
        "generatorURL": alert.generator_url,
        "fingerprint": alert.fingerprint,
    }


def webhook_payload(notification: Notification, max_alerts: int = 0) -> dict[str, Any]:
    """The version 4 webhook document; ``max_alerts`` > 0 sends only the first that many
    alerts and counts the others in ``truncatedAlerts``."""
    truncated = 0
    if 0 < max_alerts < len(notification.alerts):
        truncated = len(notification.alerts) - max_alerts
        notification = dataclasses.replace(notification, alerts=notification.alerts[:max_alerts])
    return {
        "receiver": notification.receiver,
        "status": notification.status,
        "alerts": [alert_payload(a) for a in notification.alerts],
        "groupLabels": dict(notification.group_labels),
        "commonLabels": notification.common_labels,
        "commonAnnotations": notification.common_annotations,
        "externalURL": notification.external_url,
        "version": VERSION,
        "groupKey": notification.group_key,
        "truncatedAlerts": truncated,
    }


class WebhookNotifier:
    """POSTs each notification to the configured URL with its headers and timeout."""

    kind = "webhook"

    def __init__(
        self, receiver: str, config: WebhookConfig, client: httpx.AsyncClient | None = None
    ) -> None:
        self.receiver = receiver
        self.config = config
        self._poster = JsonPoster(
            "webhook", str(config.url), config.headers, config.timeout, client
        )

    async def send(self, notification: Notification) -> None:
        """POST the notification's payload; raise a classified error unless a 2xx answers."""
        await self._poster.post(webhook_payload(notification, self.config.max_alerts))

    async def close(self) -> None:
        """Close the HTTP client unless it was given."""
        await self._poster.close()

    def __repr__(self) -> str:
        return f"WebhookNotifier({self.receiver!r}, {redact_url(str(self.config.url))})"
