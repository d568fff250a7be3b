"""The top-level configuration model: the component sections, ``service`` and the gateway's
own sections (``admin``, ``logging``, ``health``, ``slos``, ``store``, ``alerting``,
``errors``, ``auth``, ``audit``).

Component configs are not listed here: each ``receivers``/``processors``/``exporters`` entry
is validated by the model its type's factory declares in :data:`gateway.components.REGISTRY`.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from gateway.alerting.config import AlertingConfig
from gateway.audit.config import AuditConfig
from gateway.components import REGISTRY
from gateway.config.issues import ConfigError, ConfigIssue
from gateway.config.values import Duration, StrictModel
from gateway.dashboard.config import DashboardConfig
from gateway.error_tracking.config import ErrorTrackingConfig
from gateway.health.config import HealthConfig
from gateway.listeners.settings import HttpListenerSettings
from gateway.logfiles.config import RotationConfig
from gateway.registry import SECTIONS, Kind, UnknownComponentError, component_type
from gateway.security.auth_config import AuthConfig
from gateway.slo.section import SloList
from gateway.store.config import StoreConfig


class PipelineConfig(StrictModel):
    """One pipeline: component ids; processors run in the order given."""

    receivers: list[str] = Field(min_length=1)
    processors: list[str] = Field(default_factory=list)
    exporters: list[str] = Field(min_length=1)


MAX_WORKERS = 256


class AdmissionConfig(StrictModel):
    """Gateway-wide admission: request bytes in flight and load shedding (docs/limits.md)."""

    max_inflight_bytes: int = Field(default=128 * 1024 * 1024, gt=0)
    max_loop_delay: Duration = Field(default=0.5, ge=0)  # 0: never shed
    retry_after: Duration = Field(default=1.0, gt=0)


class ServiceConfig(StrictModel):
    """Pipelines keyed by ``traces|metrics|logs[/name]``, the shutdown budget, admission, and
    how many worker processes share the OTLP ports (docs/workers.md)."""

    pipelines: dict[str, PipelineConfig] = Field(min_length=1)
    shutdown_timeout: Duration = Field(default=10.0, gt=0)
    admission: AdmissionConfig = AdmissionConfig()
    workers: int | Literal["auto"] = 1

    @field_validator("workers", mode="before")
    @classmethod
    def _workers(cls, value: Any) -> int | str:
        """One clear error for any bad value (not one per member of the union)."""
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        number = value
        if isinstance(value, str) and value.strip().isdigit():
            number = int(value)
        if not isinstance(number, int) or isinstance(number, bool):
            raise ValueError(f"must be a number of processes or auto, not {value!r}")
        if not 1 <= number <= MAX_WORKERS:
            raise ValueError(f"must be between 1 and {MAX_WORKERS} (or auto), not {number}")
        return number


class AdminConfig(HttpListenerSettings):
    """The admin listener (metrics, health, dashboard); its own connection cap, so probes
    and scrapes are answered while the OTLP listeners are full."""

    endpoint: str = "127.0.0.1:8888"
    max_connections: int = Field(default=128, gt=0)


class LoggingConfig(StrictModel):
    """The gateway's own logs: on stderr, and also in ``file`` (rotated as ``rotation``
    says, docs/log-files.md) when it is set."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"
    file: str | None = Field(default=None, min_length=1)
    rotation: RotationConfig = RotationConfig()

    @field_validator("level", "format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class Config(StrictModel):
    """A whole, validated configuration. Component entries are instances of the config model
    of their type (``config.exporters["loki/eu"]`` is a ``LokiExporterConfig``)."""

    receivers: dict[str, BaseModel] = Field(default_factory=dict)
    processors: dict[str, BaseModel] = Field(default_factory=dict)
    exporters: dict[str, BaseModel] = Field(default_factory=dict)
    service: ServiceConfig
    admin: AdminConfig = AdminConfig()
    logging: LoggingConfig = LoggingConfig()
    slos: SloList = SloList([])
    store: StoreConfig = StoreConfig()
    health: HealthConfig = HealthConfig()
    alerting: AlertingConfig = AlertingConfig()
    errors: ErrorTrackingConfig = ErrorTrackingConfig()
    auth: AuthConfig = AuthConfig()
    audit: AuditConfig = AuditConfig()
    dashboard: DashboardConfig = DashboardConfig()

    @field_validator("receivers", "processors", "exporters", mode="before")
    @classmethod
    def _by_type(cls, value: Any, info: Any) -> Any:
        """Each entry validated by the model its type registered (models pass through)."""
        kind = KIND_OF_SECTION[info.field_name]
        if not isinstance(value, dict):
            return value
        entries = {}
        for cid, body in value.items():
            if isinstance(body, BaseModel):
                entries[cid] = body
                continue
            try:
                factory = REGISTRY.factory(kind, component_type(str(cid)))
            except UnknownComponentError as exc:
                raise ValueError(str(exc)) from None
            entries[cid] = factory.config.model_validate(body or {})
        return entries

    @model_validator(mode="after")
    def _one_writer_per_file(self) -> Config:
        """``logging.file``, the ``file`` exporters' paths and ``audit.path`` (resolved)
        name different files: two writers on one file would rotate and gzip under each
        other. A ConfigError (not a ValueError) so the error keeps its key's path."""
        writers: list[tuple[str, str]] = []
        if self.logging.file is not None:
            writers.append(("logging.file", self.logging.file))
        for cid, body in self.exporters.items():
            path = getattr(body, "path", None)
            if component_type(cid) == "file" and isinstance(path, str):
                writers.append((f"exporters.{cid}.path", path))
        if self.audit.enabled:
            writers.append(("audit.path", str(self.audit.resolved_path())))
        seen: dict[str, str] = {}
        issues = []
        for key, path in writers:
            real = os.path.realpath(path)
            if real in seen:
                message = f"writes the same file as {seen[real]} ({real}): give each its own path"
                issues.append(ConfigIssue(key, message))
            else:
                seen[real] = key
        if issues:
            raise ConfigError(issues)
        return self


KIND_OF_SECTION: dict[str, Kind] = {section: kind for kind, section in SECTIONS.items()}
SINGLE_SECTIONS: dict[str, type[BaseModel]] = {
    "service": ServiceConfig, "admin": AdminConfig, "logging": LoggingConfig,
    "health": HealthConfig, "slos": SloList, "store": StoreConfig, "alerting": AlertingConfig,
    "errors": ErrorTrackingConfig, "auth": AuthConfig, "audit": AuditConfig,
    "dashboard": DashboardConfig,
}  # fmt: skip
