"""Configuration of one SLO: its SLI (availability, latency or a ratio of counters), objective,
window and burn-rate alert factors."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    field_validator,
    model_validator,
)

from gateway.config.values import Duration, StrictModel, parse_window


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
