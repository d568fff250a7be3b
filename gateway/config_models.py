"""The configuration's pydantic models (``extra="forbid"`` everywhere) and value parsers.

Loading, env expansion and error reporting live in :mod:`gateway.config`, which re-exports
every model defined here.
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
    field_validator,
    model_validator,
)

from gateway.config_base import (
    Duration,
    ListenEndpoint,
    StrictModel,
    host_port,
    parse_duration,
)
from gateway.config_exporters import (
    ExporterSettings,
    FileExporterConfig,
    FileRotationSettings,
    JaegerExporterConfig,
    LokiExporterConfig,
    OtlpExporterConfig,
    PrometheusExporterConfig,
    PrometheusRemoteWriteExporterConfig,
    QueueSettings,
    RetrySettings,
    TlsSettings,
)
from gateway.config_listeners import (
    GrpcEnforcementPolicy,
    GrpcKeepalive,
    GrpcListenerSettings,
    GrpcServerParameters,
    HttpListenerSettings,
)
from gateway.config_signals import (
    AvailabilitySli,
    BurnRateFactors,
    HealthConfig,
    LatencySli,
    MetricSelector,
    OpenSloFile,
    RatioSli,
    ServiceThresholdOverrides,
    ServiceThresholds,
    SliConfig,
    SloConfig,
    SloList,
    StoreConfig,
    SystemHealthConfig,
    UsageThresholds,
    parse_window,
)
from gateway.processors.spanmetrics import DEFAULT_BUCKETS as SPANMETRICS_BUCKETS


class GrpcProtocolConfig(GrpcListenerSettings):
    """OTLP/gRPC listener settings (connection limits: :mod:`gateway.config_listeners`)."""

    endpoint: str = "0.0.0.0:4317"
    max_recv_msg_size_mib: int = Field(default=64, gt=0)


class HttpProtocolConfig(HttpListenerSettings):
    """OTLP/HTTP listener settings; sizes are bytes (limits: :mod:`gateway.config_listeners`)."""

    endpoint: str = "0.0.0.0:4318"
    max_request_body_size: int = Field(default=64 * 1024 * 1024, gt=0)
    max_decompressed_size: int = Field(default=64 * 1024 * 1024, gt=0)


class OtlpProtocols(StrictModel):
    """Which OTLP protocols to serve; ``None`` is off. A key given as null means defaults."""

    grpc: GrpcProtocolConfig | None = None
    http: HttpProtocolConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _null_means_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: {} if v is None and k in ("grpc", "http") else v for k, v in data.items()}
        return {} if data is None else data

    @model_validator(mode="after")
    def _at_least_one(self) -> OtlpProtocols:
        if self.grpc is None and self.http is None:
            raise ValueError("at least one protocol (grpc or http) must be set")
        return self


class OtlpReceiverConfig(StrictModel):
    """The ``otlp`` receiver."""

    protocols: OtlpProtocols


class HostMetricsReceiverConfig(StrictModel):
    """The ``hostmetrics`` receiver: host and gateway-process usage as OTLP metrics."""

    collection_interval: Duration = Field(default=10.0, gt=0)


class ResourceAction(StrictModel):
    """One resource attribute change; ``value`` is required except for ``delete``."""

    key: str = Field(min_length=1)
    value: str | bool | int | float | None = None
    action: Literal["insert", "upsert", "update", "delete"]

    @field_validator("value", mode="before")
    @classmethod
    def _scalar(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, str | bool | int | float):
            raise ValueError("must be a string, number or boolean")
        return value

    @model_validator(mode="after")
    def _value_needed(self) -> ResourceAction:
        if (self.value is None) != (self.action == "delete"):
            need = "must not be given" if self.action == "delete" else "is required"
            raise ValueError(f"value {need} for action '{self.action}'")
        return self


class ResourceProcessorConfig(StrictModel):
    """The ``resource`` processor: attribute changes applied in order."""

    attributes: list[ResourceAction] = Field(min_length=1)


class SpanMetricsProcessorConfig(StrictModel):
    """The ``spanmetrics`` processor: calls and duration histograms from spans."""

    buckets: list[Duration] = Field(default_factory=lambda: list(SPANMETRICS_BUCKETS))
    flush_interval: Duration = Field(default=15.0, gt=0)
    max_operations_per_service: int = Field(default=200, gt=0)
    max_services: int = Field(default=1000, gt=0)

    @field_validator("buckets")
    @classmethod
    def _increasing(cls, value: list[float]) -> list[float]:
        if not value:
            raise ValueError("must not be empty")
        if value[0] <= 0 or any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError("must be positive and strictly increasing")
        return value


class PipelineConfig(StrictModel):
    """One pipeline: component ids; processors run in the order given."""

    receivers: list[str] = Field(min_length=1)
    processors: list[str] = Field(default_factory=list)
    exporters: list[str] = Field(min_length=1)


class AdmissionConfig(StrictModel):
    """Gateway-wide admission: request bytes in flight and load shedding (docs/limits.md)."""

    max_inflight_bytes: int = Field(default=128 * 1024 * 1024, gt=0)
    max_loop_delay: Duration = Field(default=0.5, ge=0)  # 0: never shed
    retry_after: Duration = Field(default=1.0, gt=0)


class ServiceConfig(StrictModel):
    """Pipelines keyed by ``traces|metrics|logs[/name]``, the shutdown budget, admission."""

    pipelines: dict[str, PipelineConfig] = Field(min_length=1)
    shutdown_timeout: Duration = Field(default=10.0, gt=0)
    admission: AdmissionConfig = AdmissionConfig()


class AdminConfig(HttpListenerSettings):
    """The admin listener (metrics, health, dashboard); its own connection cap, so probes
    and scrapes are answered while the OTLP listeners are full."""

    endpoint: str = "127.0.0.1:8888"
    max_connections: int = Field(default=128, gt=0)


class LoggingConfig(StrictModel):
    """The gateway's own logs."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"

    @field_validator("level", "format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class Config(StrictModel):
    """A whole, validated configuration."""

    receivers: dict[str, OtlpReceiverConfig | HostMetricsReceiverConfig] = Field(
        default_factory=dict
    )
    processors: dict[str, ResourceProcessorConfig | SpanMetricsProcessorConfig] = Field(
        default_factory=dict
    )
    exporters: dict[
        str,
        OtlpExporterConfig
        | FileExporterConfig
        | LokiExporterConfig
        | JaegerExporterConfig
        | PrometheusExporterConfig
        | PrometheusRemoteWriteExporterConfig,
    ] = Field(default_factory=dict)
    service: ServiceConfig
    admin: AdminConfig = AdminConfig()
    logging: LoggingConfig = LoggingConfig()
    slos: SloList = SloList([])
    store: StoreConfig = StoreConfig()
    health: HealthConfig = HealthConfig()


COMPONENT_SECTIONS: dict[str, tuple[str, dict[str, type[BaseModel]]]] = {
    "receivers": (
        "receiver",
        {"hostmetrics": HostMetricsReceiverConfig, "otlp": OtlpReceiverConfig},
    ),
    "processors": (
        "processor",
        {"resource": ResourceProcessorConfig, "spanmetrics": SpanMetricsProcessorConfig},
    ),
    "exporters": (
        "exporter",
        {
            "file": FileExporterConfig,
            "jaeger": JaegerExporterConfig,
            "loki": LokiExporterConfig,
            "otlp": OtlpExporterConfig,
            "prometheus": PrometheusExporterConfig,
            "prometheusremotewrite": PrometheusRemoteWriteExporterConfig,
        },
    ),
}
# Exporter types that take only some signals; a pipeline of another signal may not use them.
EXPORTER_SIGNALS: dict[str, frozenset[str]] = {
    "jaeger": frozenset({"traces"}), "loki": frozenset({"logs"}),
    "prometheus": frozenset({"metrics"}), "prometheusremotewrite": frozenset({"metrics"}),
}  # fmt: skip
SINGLE_SECTIONS: dict[str, type[BaseModel]] = {
    "service": ServiceConfig, "admin": AdminConfig, "logging": LoggingConfig,
    "health": HealthConfig, "slos": SloList, "store": StoreConfig,
}  # fmt: skip

__all__ = [
    "COMPONENT_SECTIONS",
    "EXPORTER_SIGNALS",
    "SINGLE_SECTIONS",
    "AdminConfig",
    "AdmissionConfig",
    "AvailabilitySli",
    "BurnRateFactors",
    "Config",
    "Duration",
    "ExporterSettings",
    "FileExporterConfig",
    "FileRotationSettings",
    "GrpcEnforcementPolicy",
    "GrpcKeepalive",
    "GrpcListenerSettings",
    "GrpcProtocolConfig",
    "GrpcServerParameters",
    "HealthConfig",
    "HostMetricsReceiverConfig",
    "HttpListenerSettings",
    "HttpProtocolConfig",
    "JaegerExporterConfig",
    "LatencySli",
    "ListenEndpoint",
    "LoggingConfig",
    "LokiExporterConfig",
    "MetricSelector",
    "OpenSloFile",
    "OtlpExporterConfig",
    "OtlpProtocols",
    "OtlpReceiverConfig",
    "PipelineConfig",
    "PrometheusExporterConfig",
    "PrometheusRemoteWriteExporterConfig",
    "QueueSettings",
    "RatioSli",
    "ResourceAction",
    "ResourceProcessorConfig",
    "RetrySettings",
    "ServiceConfig",
    "ServiceThresholdOverrides",
    "ServiceThresholds",
    "SliConfig",
    "SloConfig",
    "SloList",
    "SpanMetricsProcessorConfig",
    "StoreConfig",
    "StrictModel",
    "SystemHealthConfig",
    "TlsSettings",
    "UsageThresholds",
    "host_port",
    "parse_duration",
    "parse_window",
]
