"""Configuration of health: service thresholds (global and per service) and system resource
thresholds."""

from __future__ import annotations

from pydantic import (
    Field,
    model_validator,
)

from gateway.config.values import Duration, StrictModel


class ServiceThresholds(StrictModel):
    """When a service counts as degraded or unhealthy (rates 0..1, latencies in seconds)."""

    error_rate_degraded: float = Field(default=0.01, ge=0, le=1)
    error_rate_unhealthy: float = Field(default=0.05, ge=0, le=1)
    latency_p99_degraded: Duration = Field(default=1.0, gt=0)
    latency_p99_unhealthy: Duration = Field(default=5.0, gt=0)
    stale_after: Duration = Field(default=60.0, gt=0)
    min_requests: int = Field(default=10, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> ServiceThresholds:
        for what in ("error_rate", "latency_p99"):
            low, high = getattr(self, f"{what}_degraded"), getattr(self, f"{what}_unhealthy")
            if low > high:
                raise ValueError(
                    f"{what}_degraded ({low}) must not be above {what}_unhealthy ({high})"
                )
        return self


class ServiceThresholdOverrides(StrictModel):
    """Per-service changes to ``health.thresholds``; keys left out keep the global value."""

    error_rate_degraded: float | None = Field(default=None, ge=0, le=1)
    error_rate_unhealthy: float | None = Field(default=None, ge=0, le=1)
    latency_p99_degraded: Duration | None = Field(default=None, gt=0)
    latency_p99_unhealthy: Duration | None = Field(default=None, gt=0)
    stale_after: Duration | None = Field(default=None, gt=0)
    min_requests: int | None = Field(default=None, ge=1)


class UsageThresholds(StrictModel):
    """Utilization (0..1) at which a resource is ``warning`` or ``critical``."""

    warning: float = Field(default=0.85, gt=0, le=1)
    critical: float = Field(default=0.95, gt=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> UsageThresholds:
        if self.warning > self.critical:
            raise ValueError(f"warning ({self.warning}) must not be above critical")
        return self


class SystemHealthConfig(StrictModel):
    """Host resource thresholds; ``paths`` adds directories whose filesystems are checked.

    ``cpu`` (host, all cores) is reported but informational; ``process_cpu`` is the gateway
    process's own CPU as a share of one core, and it is what can make the gateway degraded."""

    cpu: UsageThresholds = UsageThresholds(warning=0.9, critical=0.98)
    process_cpu: UsageThresholds = UsageThresholds(warning=0.9, critical=0.98)
    memory: UsageThresholds = UsageThresholds()
    disk: UsageThresholds = UsageThresholds()
    paths: list[str] = Field(default_factory=list)


class HealthConfig(StrictModel):
    """Service and component health (``/health``)."""

    window: Duration = Field(default=300.0, gt=0)
    bucket: Duration = Field(default=10.0, gt=0)
    max_services: int = Field(default=1000, gt=0)
    history_minutes: int = Field(default=60, ge=1, le=1440)
    cache_ttl: Duration = Field(default=1.0, ge=0)
    thresholds: ServiceThresholds = ServiceThresholds()
    services: dict[str, ServiceThresholdOverrides] = Field(default_factory=dict)
    system: SystemHealthConfig = SystemHealthConfig()

    @model_validator(mode="after")
    def _consistent(self) -> HealthConfig:
        if self.bucket > self.window:
            raise ValueError(f"bucket ({self.bucket}s) must not be longer than window")
        if self.window / self.bucket > 1000:
            raise ValueError("window / bucket must be at most 1000 buckets")
        for name in self.services:
            try:
                self.thresholds_for(name)
            except ValueError as exc:
                raise ValueError(f"services.{name}: {_first_error(exc)}") from None
        return self

    def thresholds_for(self, service: str) -> ServiceThresholds:
        """The global thresholds with the service's overrides applied."""
        override = self.services.get(service)
        if override is None:
            return self.thresholds
        changes = override.model_dump(exclude_none=True)
        return ServiceThresholds.model_validate({**self.thresholds.model_dump(), **changes})


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        return str(first.get("ctx", {}).get("error", first["msg"]))
    return str(exc)
