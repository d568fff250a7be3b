"""Configuration models of the gateway's own signals: health thresholds, the store, SLOs."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    RootModel,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)

from gateway.config_base import Duration, StrictModel, parse_duration


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
    """Host resource thresholds; ``paths`` adds directories whose filesystems are checked."""

    cpu: UsageThresholds = UsageThresholds(warning=0.9, critical=0.98)
    memory: UsageThresholds = UsageThresholds()
    disk: UsageThresholds = UsageThresholds()
    paths: list[str] = Field(default_factory=list)


class HealthConfig(StrictModel):
    """Service and component health (``/health``)."""

    window: Duration = Field(default=300.0, gt=0)
    bucket: Duration = Field(default=10.0, gt=0)
    max_services: int = Field(default=1000, gt=0)
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


def parse_window(value: object) -> float:
    """Seconds from a duration that may also use days and weeks (``30d``, ``4w``, ``6h``)."""
    if isinstance(value, str) and (long := re.fullmatch(r"\s*(\d+(?:\.\d+)?)([dw])\s*", value)):
        return float(long[1]) * (86400.0 if long[2] == "d" else 604800.0)
    return parse_duration(value)


class StoreConfig(StrictModel):
    """The embedded SQLite store; ``path`` defaults to ``<data dir>/otelgate.db``."""

    enabled: bool = True
    path: str | None = Field(default=None, min_length=1)
    flush_interval: Duration = Field(default=5.0, gt=0)


class MetricSelector(StrictModel):
    """A counter (OTLP monotonic sum, cumulative or delta) and data point attributes to match;
    ``prometheus_name`` is its exported name for ``slo-rules`` (default: derived)."""

    metric: str = Field(min_length=1)
    attributes: dict[str, str | int | float | bool] = Field(default_factory=dict)
    prometheus_name: str | None = Field(default=None, pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


class AvailabilitySli(StrictModel):
    """Good events: SERVER spans of the service without error status (optionally one name)."""

    span_name: str | None = Field(default=None, min_length=1)


class LatencySli(AvailabilitySli):
    """Good events: SERVER spans of the service lasting at most ``threshold``."""

    threshold: Duration = Field(gt=0)


class RatioSli(StrictModel):
    """Good and total events: the increments of two counters."""

    good: MetricSelector
    total: MetricSelector


class SliConfig(StrictModel):
    """Exactly one SLI kind."""

    availability: AvailabilitySli | None = None
    latency: LatencySli | None = None
    ratio: RatioSli | None = None

    @model_validator(mode="before")
    @classmethod
    def _null_means_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and "availability" in data and data["availability"] is None:
            return {**data, "availability": {}}
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> SliConfig:
        given = [kind for kind in ("availability", "latency", "ratio") if getattr(self, kind)]
        if len(given) != 1:
            got = f" (got {' and '.join(given)})" if given else ""
            raise ValueError(f"set exactly one of availability, latency or ratio{got}")
        return self

    @property
    def kind(self) -> Literal["availability", "latency", "ratio"]:
        """Which SLI this is."""
        return "availability" if self.availability else "latency" if self.latency else "ratio"


class BurnRateFactors(StrictModel):
    """Burn-rate factors of the four workbook alert conditions (windows: long and short)."""

    page_quick: float = Field(default=14.4, gt=0)  # 1h and 5m
    page_slow: float = Field(default=6.0, gt=0)  # 6h and 30m
    ticket_quick: float = Field(default=3.0, gt=0)  # 1d and 2h
    ticket_slow: float = Field(default=1.0, gt=0)  # 3d and 6h


class SloConfig(StrictModel):
    """One SLO: ``objective`` is a ratio (0.999), ``window`` a rolling window (default 30d)."""

    name: str
    service: str = Field(min_length=1)
    description: str = ""
    sli: SliConfig
    objective: float = Field(gt=0, lt=1)
    window: Annotated[float, BeforeValidator(parse_window)] = 30 * 86400.0
    alerting: BurnRateFactors = BurnRateFactors()

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?", value):
            raise ValueError(
                f"'{value}' must be 1-63 letters, digits, '.', '_' or '-', starting and "
                "ending with a letter or digit"
            )
        return value

    @field_validator("objective", mode="before")
    @classmethod
    def _ratio_not_percent(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool) and 1 < value <= 100:
            raise ValueError(f"must be a ratio below 1 (got {value}; for {value}% write "
                             f"{value / 100:g})")  # fmt: skip
        return value

    @field_validator("window")
    @classmethod
    def _whole_minutes(cls, value: float) -> float:
        if not 3600 <= value <= 366 * 86400 or value % 60:
            raise ValueError("must be whole minutes from 1h to 366d (e.g. 28d, 30d, 7d)")
        return value

    @property
    def window_minutes(self) -> int:
        """The window in minutes."""
        return int(self.window // 60)


class OpenSloFile(StrictModel):
    """``openslo: FILE``: the SLOs of an OpenSLO v1 file (relative to the working directory)."""

    openslo: str = Field(min_length=1)
    _slos: list[SloConfig] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _load(self) -> OpenSloFile:
        from gateway.config import ConfigError  # here: gateway.config imports this module
        from gateway.signals.openslo import load_openslo

        try:
            self._slos = load_openslo(self.openslo)
        except ConfigError as exc:
            problems = "\n  ".join(map(str, exc.errors))
            raise ValueError(f"invalid OpenSLO file:\n  {problems}") from None
        return self

    @property
    def slos(self) -> list[SloConfig]:
        """The SLOs the file defines."""
        return list(self._slos)


def _slo_entry(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    if isinstance(value, dict) and "openslo" in value:
        return OpenSloFile.model_validate(value)
    return SloConfig.model_validate(value)


class SloList(RootModel[list[Annotated[SloConfig | OpenSloFile, WrapValidator(_slo_entry)]]]):
    """The ``slos`` section: inline SLOs and ``openslo: FILE`` entries."""

    @model_validator(mode="before")
    @classmethod
    def _null_is_empty(cls, data: Any) -> Any:
        return [] if data is None or data == {} else data

    @model_validator(mode="after")
    def _unique_names(self) -> SloList:
        seen: dict[str, int] = {}
        for index, entry in enumerate(self.root):
            for slo in entry.slos if isinstance(entry, OpenSloFile) else [entry]:
                if slo.name in seen:
                    first = seen[slo.name]
                    raise ValueError(f"SLO name '{slo.name}' is defined twice (slos[{first}] "
                                     f"and slos[{index}])")  # fmt: skip
                seen[slo.name] = index
        return self

    def definitions(self) -> list[SloConfig]:
        """Every SLO, inline and from OpenSLO files, in order."""
        found: list[SloConfig] = []
        for entry in self.root:
            found.extend(entry.slos if isinstance(entry, OpenSloFile) else [entry])
        return found
