"""``dashboard``: the pages served at ``/`` on the admin listener."""

from __future__ import annotations

from pydantic import Field

from gateway.config.values import Duration, StrictModel


class DashboardConfig(StrictModel):
    """The live dashboard (``/`` on the admin listener)."""

    enabled: bool = True
    #: How often an open page fetches fresh numbers (the logs page's tail is pushed).
    refresh_interval: Duration = Field(default=5.0, ge=1, le=3600)
    #: Seconds a login session lasts before the browser forgets the cookie.
    session_max_age: Duration = Field(default=12 * 3600.0, ge=60)
