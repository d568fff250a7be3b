"""The apprise integration: the long tail of services (Slack, Teams, Telegram, PagerDuty, ...)
through the ``apprise`` library and its URLs (https://github.com/caronc/Apprise/wiki).

``apprise`` is an optional dependency (``pip install 'otelgate[apprise]'``), imported when a
receiver uses it. Every URL is checked when the notifier is built: one apprise does not
understand is a configuration error. A firing notification is sent as apprise's ``failure``
type, a resolved one as ``success``, with the subject as title and the text body.

Apprise reports only whether every service took the notification: when one did not, the
notification is retryable and a retry notifies all the receiver's services again (give a
service its own receiver to avoid the duplicates). Apprise logs the cause under ``apprise``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.alerting.alerts import Notification
from gateway.alerting.notifiers.config import AppriseConfig
from gateway.alerting.notifiers.render import subject, text_body
from gateway.errors import PermanentError, RetryableError
from gateway.redact import redact_url

MISSING = "apprise is not installed: pip install 'otelgate[apprise]'"


class AppriseNotifier:
    """Notifies every apprise URL of the receiver."""

    kind = "apprise"

    def __init__(self, receiver: str, config: AppriseConfig) -> None:
        try:
            import apprise
        except ImportError as exc:
            raise PermanentError(MISSING) from exc
        self.receiver = receiver
        self._types: Any = apprise.NotifyType
        self._app: Any = apprise.Apprise()
        self.targets: list[str] = []  # the URLs with their secrets masked, for messages
        for url in config.urls:
            plugin = apprise.Apprise.instantiate(url)
            if plugin is None or not self._app.add(plugin):
                raise ValueError(
                    f"apprise does not understand the URL {redact_url(url)} (unknown scheme "
                    "or missing parts; see https://github.com/caronc/Apprise/wiki)"
                )
            self.targets.append(plugin.url(privacy=True))

    async def send(self, notification: Notification) -> None:
        """Notify every URL; raise :class:`RetryableError` unless all of them succeeded."""
        kind = self._types.FAILURE if notification.status == "firing" else self._types.SUCCESS
        delivered = await asyncio.to_thread(
            self._app.notify,
            body=text_body(notification),
            title=subject(notification),
            notify_type=kind,
        )
        if not delivered:
            raise RetryableError(
                f"apprise: not every service took the notification ({', '.join(self.targets)}); "
                "the apprise log says why"
            )

    async def close(self) -> None:
        """Nothing to release: apprise connects per notification."""

    def __repr__(self) -> str:
        return f"AppriseNotifier({self.receiver!r}, {self.targets})"
