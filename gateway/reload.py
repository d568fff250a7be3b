"""Configuration reload: SIGHUP and ``POST /-/reload`` re-read the configuration file and
the alert rule files.

Alerting (rules, receivers, routes) changes in place; open alerts of unchanged rules keep
their state. Other sections need a restart: a reload says which ones changed. An invalid new
configuration changes nothing: every error is logged with its path, the answer lists them,
and ``otelgate_config_last_reload_successful`` is 0 (Prometheus' convention) until a reload
succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Gauge

from gateway.alerting.service import AlertingService
from gateway.alerting.setup import rules_of
from gateway.config.diff import changed_paths
from gateway.config.issues import ConfigError, ConfigIssue
from gateway.config.model import Config
from gateway.errors import PermanentError
from gateway.security.access import AuditRecorder, current_actor

log = logging.getLogger("otelgate.reload")


class Reloadable(Protocol):
    """What a reload changes in the running gateway."""

    config: Config
    alerting: AlertingService | None


@dataclass(slots=True)
class ReloadOutcome:
    """What a reload did."""

    ok: bool
    errors: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    restart_needed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # configuration paths, never values
    config: Config | None = None  # the configuration loaded (when it was valid)

    def as_json(self) -> dict[str, Any]:
        """The ``POST /-/reload`` answer."""
        return {
            "status": "reloaded" if self.ok else "failed",
            "errors": self.errors,
            "applied": self.applied,
            "restart_needed": self.restart_needed,
        }


class ConfigReloader:
    """Re-reads the configuration with ``load`` and applies what can change live."""

    def __init__(
        self,
        gateway: Reloadable,
        load: Callable[[], Config],
        registry: CollectorRegistry,
        audit: AuditRecorder | None = None,
    ) -> None:
        self.gateway = gateway
        self.load = load
        self.audit = audit
        self.successful = Gauge(
            "otelgate_config_last_reload_successful",
            "Whether the last configuration reload succeeded (1) or failed (0).",
            registry=registry,
        )
        self.success_time = Gauge(
            "otelgate_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully.",
            registry=registry,
        )
        self.successful.set(1)
        self.success_time.set(time.time())
        self._lock = asyncio.Lock()
        #: Called after a successful reload (the supervisor replaces its workers there).
        self.on_reloaded: Callable[[ReloadOutcome], Awaitable[None]] | None = None

    async def reload(self, source: str = "sighup") -> ReloadOutcome:
        """Reload now (reloads never overlap); ``source`` (``sighup``, ``http``) is what the
        audit trail records, with the admin caller's name when there is one."""
        async with self._lock:
            try:
                outcome = await self._reload()
            except Exception as exc:  # a bug: the attempt is still audited, then it propagates
                self._audit(source, ReloadOutcome(False, errors=[f"internal error: {exc}"]))
                raise
        if outcome.ok and self.on_reloaded is not None:
            await self.on_reloaded(outcome)
        self._audit(source, outcome)
        if outcome.ok:
            self.successful.set(1)
            self.success_time.set(time.time())
            log.info("configuration reloaded (applied: %s)", ", ".join(outcome.applied) or "none")
            if outcome.restart_needed:
                log.warning("changes to %s take effect after a restart",
                            ", ".join(outcome.restart_needed))  # fmt: skip
        else:
            self.successful.set(0)
            for error in outcome.errors:
                log.error("reload refused, the running configuration stays: %s", error)
        return outcome

    def _audit(self, source: str, outcome: ReloadOutcome) -> None:
        if self.audit is not None:
            details = {
                "source": source, "ok": outcome.ok, "changed": outcome.changed,
                "applied": outcome.applied, "restart_needed": outcome.restart_needed,
                "errors": len(outcome.errors),
            }  # fmt: skip
            self.audit.record("config.reload", current_actor.get(), details)

    async def _reload(self) -> ReloadOutcome:
        try:
            new = await asyncio.to_thread(self.load)
            rules = rules_of(new.alerting) if new.alerting.enabled else []
        except ConfigError as exc:
            return ReloadOutcome(False, errors=[str(issue) for issue in exc.errors])
        old = self.gateway.config
        changed = [
            name for name in type(old).model_fields if getattr(old, name) != getattr(new, name)
        ]
        paths = changed_paths(old, new) if changed else []
        restart = [name for name in changed if name != "alerting"]
        alerting = self.gateway.alerting
        if old.alerting.enabled != new.alerting.enabled:
            restart.append("alerting.enabled")
        elif alerting is not None:
            try:
                await alerting.reload(new.alerting, rules)
            except (ValueError, PermanentError) as exc:
                issue = ConfigIssue("alerting.receivers", str(exc))
                return ReloadOutcome(False, errors=[str(issue)], changed=paths)
            self.gateway.config = old.model_copy(update={"alerting": new.alerting})
        applied = ["alerting"] if alerting is not None and "alerting.enabled" not in restart else []
        return ReloadOutcome(
            True, applied=applied, restart_needed=sorted(set(restart)), changed=paths, config=new
        )

    def router(self) -> APIRouter:
        """``POST /-/reload`` (Prometheus' path)."""
        router = APIRouter(tags=["admin"])

        @router.post("/-/reload", summary="Reload the configuration and alert rule files")
        async def reload() -> JSONResponse:
            outcome = await self.reload("http")
            return JSONResponse(outcome.as_json(), status_code=200 if outcome.ok else 400)

        return router
