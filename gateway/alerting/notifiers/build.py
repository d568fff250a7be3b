"""A receiver's notifiers, built from its configuration."""

from __future__ import annotations

import httpx

from gateway.alerting.notifiers.alertmanager import AlertmanagerNotifier
from gateway.alerting.notifiers.apprise_notifier import AppriseNotifier
from gateway.alerting.notifiers.base import Notifier
from gateway.alerting.notifiers.config import ReceiverConfig
from gateway.alerting.notifiers.email import EmailNotifier
from gateway.alerting.notifiers.webhook import WebhookNotifier


def build_notifiers(
    receiver: str,
    config: ReceiverConfig,
    *,
    firing_ttl: float,
    client: httpx.AsyncClient | None = None,
) -> list[Notifier]:
    """One notifier per configured integration, in the order webhook, alertmanager, email,
    apprise. ``client`` is shared by the HTTP ones (each makes its own when None);
    ``firing_ttl`` is how long Alertmanager keeps a firing alert the gateway stops re-sending.

    Raises :class:`ValueError` for an apprise URL apprise does not understand and
    :class:`~gateway.errors.PermanentError` when apprise is needed but not installed.
    """
    notifiers: list[Notifier] = []
    if config.webhook is not None:
        notifiers.append(WebhookNotifier(receiver, config.webhook, client))
    if config.alertmanager is not None:
        notifiers.append(
            AlertmanagerNotifier(receiver, config.alertmanager, firing_ttl, client=client)
        )
    if config.email is not None:
        notifiers.append(EmailNotifier(receiver, config.email))
    if config.apprise is not None:
        notifiers.append(AppriseNotifier(receiver, config.apprise))
    return notifiers
