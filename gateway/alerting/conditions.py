"""The conditions an alert rule can test, as configuration: exactly one kind per rule.

Each kind reads state the gateway already keeps (service health, system samples, exporter
queues, SLO burn rates, log counts); :mod:`gateway.alerting.evaluation` computes them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from gateway.config.values import Duration, StrictModel

# Conditions evaluated per service (``service:`` applies), then the others.
SERVICE_KINDS = (
    "error_rate", "latency_p95", "latency_p99", "request_rate", "stale", "health", "log_count",
    "error_group",
)  # fmt: skip
KINDS = (
    *SERVICE_KINDS,
    "cpu", "memory", "filesystem", "exporter", "queue_fill", "dropped_items", "slo_burn",
    "log_file",
)  # fmt: skip
LOG_SEVERITIES = {"trace": 1, "debug": 5, "info": 9, "warn": 13, "error": 17, "fatal": 21}


class Above(StrictModel):
    """Holds when the value is above ``above``."""

    above: float = Field(ge=0)


class Ratio(StrictModel):
    """Holds when a ratio (0..1) is above ``above``."""

    above: float = Field(ge=0, le=1)


class ErrorRate(Ratio):
    """A service's error rate over the health window; needs ``min_requests`` requests."""

    min_requests: int = Field(default=10, ge=1)


class Latency(StrictModel):
    """A service's latency percentile over the health window, above a duration."""

    above: Duration = Field(gt=0)
    min_requests: int = Field(default=10, ge=1)


class Below(StrictModel):
    """Holds when requests per second fall below ``below`` (low throughput)."""

    below: float = Field(gt=0)


class Filesystem(Ratio):
    """Disk use of the filesystems holding ``paths`` (default: the gateway's data, spool and
    log directories and ``health.system.paths``)."""

    paths: list[str] = Field(default_factory=list)

    @field_validator("paths", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class ExporterFailing(StrictModel):
    """An exporter that cannot deliver (retrying or failed); ``name`` limits it to one."""

    failing: Literal[True]
    name: str | None = None


class QueueFill(Ratio):
    """An exporter queue filled above a ratio of its capacity."""

    name: str | None = None


class DroppedItems(StrictModel):
    """Items an exporter lost (dropped or failed for good) within ``window``."""

    above: float = Field(ge=0)
    window: Duration = Field(default=300.0, gt=0)
    name: str | None = None


class LogFile(StrictModel):
    """A file the gateway writes (its log, a file exporter's) whose rotation status is at
    ``status`` or worse; ``path`` limits it to one file."""

    status: Literal["warning", "critical"] = "warning"
    path: str | None = None


class SloBurn(StrictModel):
    """An SLO burning its error budget at a page or ticket rate (``slo: "*"``: every SLO)."""

    slo: str = Field(min_length=1)
    severity: Literal["page", "ticket"] = "page"


class LogCount(StrictModel):
    """A service's log records at or above ``severity`` (matching ``match``, a regex on the
    body) within ``window``, above ``above``."""

    severity: Literal["trace", "debug", "info", "warn", "error", "fatal"] = "error"
    match: str | None = None
    above: float = Field(ge=0)
    window: Duration = Field(default=300.0, gt=0)

    @field_validator("match")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        import re

        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value


class Condition(StrictModel):
    """Exactly one condition kind."""

    error_rate: ErrorRate | None = None
    latency_p95: Latency | None = None
    latency_p99: Latency | None = None
    request_rate: Below | None = None
    stale: Literal[True] | None = None
    health: Literal["unhealthy", "degraded"] | None = None
    cpu: Ratio | None = None
    memory: Ratio | None = None
    filesystem: Filesystem | None = None
    exporter: ExporterFailing | None = None
    queue_fill: QueueFill | None = None
    dropped_items: DroppedItems | None = None
    slo_burn: SloBurn | None = None
    log_count: LogCount | None = None
    error_group: Literal["new", "regression"] | None = None
    log_file: LogFile | None = None

    @model_validator(mode="before")
    @classmethod
    def _known(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for key in value:
                if key not in KINDS:
                    raise ValueError(f"unknown condition '{key}' (known: {', '.join(KINDS)})")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Condition:
        given = [k for k in KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            what = ", ".join(given) if given else "none"
            raise ValueError(f"a rule has exactly one condition (got {what})")
        return self

    @property
    def kind(self) -> str:
        """The condition's kind (``error_rate``, ``cpu``, ...)."""
        return next(k for k in KINDS if getattr(self, k) is not None)

    @property
    def spec(self) -> Any:
        """The kind's settings (a model, ``True`` or a literal)."""
        return getattr(self, self.kind)

    @property
    def per_service(self) -> bool:
        """Whether the condition is evaluated per service."""
        return self.kind in SERVICE_KINDS
