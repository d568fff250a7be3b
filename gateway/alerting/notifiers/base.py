"""What every notifier is: a receiver's integration that delivers one notification at a time.

``send`` raises a classified error (:mod:`gateway.errors`) so the caller can decide alone
whether to try again: :class:`~gateway.errors.RetryableError` (or its subclass
:class:`~gateway.errors.ThrottledError`, with ``retry_after`` seconds when the peer said, from
a ``Retry-After`` header in seconds or as an HTTP date) for a failure that may pass, and
:class:`~gateway.errors.PermanentError` for one retrying cannot fix (a refused request, bad
credentials, an unknown recipient).
"""

from __future__ import annotations

from typing import Protocol

from gateway.alerting.alerts import Notification


class Notifier(Protocol):
    """One integration of a receiver (webhook, Alertmanager, email or apprise)."""

    @property
    def receiver(self) -> str:
        """The name of the receiver this integration belongs to."""
        ...

    @property
    def kind(self) -> str:
        """``webhook``, ``alertmanager``, ``email`` or ``apprise``."""
        ...

    async def send(self, notification: Notification) -> None:
        """Deliver ``notification``, or raise a classified error."""
        ...

    async def close(self) -> None:
        """Release connections; the notifier is not used afterwards."""
        ...
