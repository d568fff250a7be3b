"""The Alertmanager integration: alerts POSTed to ``<endpoint>/api/v2/alerts``, as Prometheus
sends them, so Alertmanager groups, silences, inhibits and routes them itself.

The body is the v2 API's ``postableAlerts``: a list of ``{labels, annotations, startsAt,
endsAt, generatorURL}``. Like Prometheus, a firing alert is sent with ``endsAt`` a time to live
ahead (``firing_ttl``), so Alertmanager resolves it by itself if the gateway dies; the caller
re-sends firing alerts well within that time. A resolved alert carries its real end, in the
past, which resolves it at once.

Facts from Alertmanager's ``api/v2/api.go`` (``postAlertsHandler``): labels with an empty value
are dropped, then an alert without labels, or whose end is before its start, is invalid; the
valid alerts of the request are stored *and* the request is answered 400 naming the invalid
ones. A 400 is therefore permanent for this request, but the other alerts were delivered.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from gateway.alerting.alerts import AlertSnapshot, Notification
from gateway.alerting.notifiers.config import AlertmanagerConfig
from gateway.alerting.notifiers.wire import JsonPoster, rfc3339
from gateway.redact import redact_url

ALERTS_PATH = "/api/v2/alerts"


def alerts_url(endpoint: str) -> str:
    """``endpoint`` (with or without a path prefix or a trailing ``/``) + ``/api/v2/alerts``."""
    url = httpx.URL(endpoint)
    return str(url.copy_with(path=url.path.rstrip("/") + ALERTS_PATH))


def postable_alert(alert: AlertSnapshot, now: float, firing_ttl: float) -> dict[str, Any]:
    """One alert of the v2 API's ``postableAlerts``, as of ``now``."""
    if alert.status == "firing":
        ends_at = now + firing_ttl
    else:
        ends_at = now if alert.ends_at is None else alert.ends_at
    document: dict[str, Any] = {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": rfc3339(alert.starts_at),
        # Alertmanager refuses an end before the start (a clock step, a tiny TTL).
        "endsAt": rfc3339(max(ends_at, alert.starts_at)),
    }
    if alert.generator_url:  # an empty URL is left out rather than sent as ""
        document["generatorURL"] = alert.generator_url
    return document


class AlertmanagerNotifier:
    """Sends the alerts of each notification to one Alertmanager."""

    kind = "alertmanager"

    def __init__(
        self,
        receiver: str,
        config: AlertmanagerConfig,
        firing_ttl: float,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if firing_ttl <= 0:
            raise ValueError(f"firing_ttl must be positive (got {firing_ttl})")
        self.receiver = receiver
        self.config = config
        self.firing_ttl = firing_ttl
        self.clock = clock
        self.url = alerts_url(str(config.endpoint))
        self._poster = JsonPoster("Alertmanager", self.url, config.headers, config.timeout, client)

    def payload(self, notification: Notification) -> list[dict[str, Any]]:
        """The ``postableAlerts`` body for ``notification``, as of now."""
        now = self.clock()
        return [postable_alert(a, now, self.firing_ttl) for a in notification.alerts]

    async def send(self, notification: Notification) -> None:
        """POST the notification's alerts; raise a classified error unless a 2xx answers."""
        if notification.alerts:
            await self._poster.post(self.payload(notification))

    async def close(self) -> None:
        """Close the HTTP client unless it was given."""
        await self._poster.close()

    def __repr__(self) -> str:
        return f"AlertmanagerNotifier({self.receiver!r}, {redact_url(self.url)})"
