"""What the dashboard pages read: the gateway's live components, handed over once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.alerting.service import AlertingService
from gateway.api.health import HealthService
from gateway.dashboard.config import DashboardConfig
from gateway.error_tracking.service import ErrorTrackingService
from gateway.security.auth import Authenticator
from gateway.security.sessions import Sessions
from gateway.slo.tracker import SloTracker
from gateway.store.telemetry_queries import TelemetryReader


@dataclass(slots=True)
class DashboardSources:
    """The components the pages show (None: not configured in this gateway)."""

    config: DashboardConfig
    health: HealthService
    slos: SloTracker
    alerting: AlertingService | None
    errors: ErrorTrackingService | None
    #: The embedded store's reader (None until the store exporter has started, or without one).
    telemetry: Callable[[], TelemetryReader | None]
    auth: Authenticator | None
    sessions: Sessions

    @property
    def refresh(self) -> float:
        """Seconds between a page's live updates."""
        return self.config.refresh_interval
