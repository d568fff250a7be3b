"""The ``cloudwatch`` exporter's configuration: where logs and EMF metrics go, and how."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, field_validator, model_validator

from exporters.cloudwatch.client import MISSING, aiobotocore_installed
from exporters.cloudwatch.limits import (
    EMF_MAX_DIMENSION_NAME,
    EMF_MAX_DIMENSIONS,
    EMF_MAX_NAMESPACE,
    EMF_NAMESPACE,
    MAX_EVENT_BYTES,
    RETENTION_DAYS,
)
from exporters.cloudwatch.names import NameKind, NameTemplate
from exporters.settings import DEFAULT_EXPORT_TIMEOUT, ExporterSettings
from gateway.config.values import Duration, StrictModel

DEFAULT_LOG_GROUP = "/otelgate/logs"
DEFAULT_METRICS_LOG_GROUP = "/otelgate/metrics"
DEFAULT_LOG_STREAM = "{service.name}"
DEFAULT_NAMESPACE = "otelgate"


def _checked(kind: NameKind) -> AfterValidator:
    def check(value: str) -> str:
        NameTemplate.parse(value, kind)  # raises ValueError with the reason
        return value

    return AfterValidator(check)


#: A log group or stream name, with ``{attribute}`` placeholders, checked when loaded.
GroupName = Annotated[str, _checked("group")]
StreamName = Annotated[str, _checked("stream")]


class CloudWatchMetricsSettings(StrictModel):
    """Metrics as Embedded Metric Format records: where they go and their dimensions."""

    log_group_name: GroupName = DEFAULT_METRICS_LOG_GROUP
    log_stream_name: StreamName = DEFAULT_LOG_STREAM
    namespace: str = DEFAULT_NAMESPACE
    # Resource attributes that become dimensions (in this order), before the point's own.
    resource_dimensions: list[str] = Field(default_factory=lambda: ["service.name"])
    # The data point's attributes become dimensions too (sorted by key), up to 30 in all.
    attribute_dimensions: bool = True
    storage_resolution: Literal[1, 60] = 60
    # How long the last point of a cumulative series is kept to compute the next delta.
    metric_expiration: Duration = Field(default=300.0, gt=0)

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if not EMF_NAMESPACE.fullmatch(value) or len(value) > EMF_MAX_NAMESPACE:
            raise ValueError(
                f"'{value}' must be 1-{EMF_MAX_NAMESPACE} of letters, digits and . _ # : / -"
            )
        if value.startswith("AWS/"):
            raise ValueError(f"'{value}': namespaces starting with AWS/ are AWS's own")
        return value

    @field_validator("resource_dimensions")
    @classmethod
    def _dimensions(cls, value: list[str]) -> list[str]:
        if len(value) > EMF_MAX_DIMENSIONS:
            raise ValueError(f"at most {EMF_MAX_DIMENSIONS} dimensions (CloudWatch's limit)")
        if len(set(value)) != len(value):
            raise ValueError("a dimension is listed twice")
        for name in value:
            if not name.strip() or len(name) > EMF_MAX_DIMENSION_NAME or not name.isascii():
                raise ValueError(
                    f"'{name}' must be 1-{EMF_MAX_DIMENSION_NAME} ASCII characters, not all spaces"
                )
            if name.startswith(":"):
                raise ValueError(f"'{name}': a dimension name cannot start with ':'")
        return value


class CloudWatchExporterConfig(ExporterSettings):
    """The ``cloudwatch`` exporter: logs to CloudWatch Logs with ``PutLogEvents``, metrics as
    Embedded Metric Format records in a log group of their own. Credentials come from the
    standard AWS chain (environment, shared files and profiles, container or instance role)."""

    region: str | None = Field(default=None, min_length=1)  # None: the AWS chain's region
    endpoint: str | None = None  # None: the region's public endpoint
    log_group_name: GroupName = DEFAULT_LOG_GROUP
    log_stream_name: StreamName = DEFAULT_LOG_STREAM
    # Days to keep the events of a group the exporter creates; 0 keeps them forever.
    log_retention: int = 0
    # False: the event is a JSON object (body, severity, ids, attributes, resource);
    # True: the event is the body alone, as text.
    raw_log: bool = False
    # Longer messages are cut to this many UTF-8 bytes (CloudWatch's per-event limit).
    max_event_size: int = Field(default=MAX_EVENT_BYTES, ge=1024, le=MAX_EVENT_BYTES)
    timeout: Duration = Field(default=DEFAULT_EXPORT_TIMEOUT, gt=0)
    metrics: CloudWatchMetricsSettings = CloudWatchMetricsSettings()

    @field_validator("log_retention")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value != 0 and value not in RETENTION_DAYS:
            raise ValueError(
                f"{value} is not a retention CloudWatch takes: 0 (keep forever) or one of "
                f"{', '.join(map(str, RETENTION_DAYS))} days"
            )
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and not all(c.isalnum() or c == "-" for c in value):
            raise ValueError(f"'{value}' is not an AWS region name (e.g. eu-west-1)")
        return value

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return value
        url = urlsplit(value)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(
                f"'{value}' must be an http:// or https:// URL, e.g. https://logs.eu-west-1."
                "amazonaws.com or http://127.0.0.1:4566 for a local emulator"
            )
        try:
            url.port  # noqa: B018  # raises on a bad port
        except ValueError:
            raise ValueError(f"port in '{value}' must be a number in 1..65535") from None
        return value

    @model_validator(mode="after")
    def _installed(self) -> CloudWatchExporterConfig:
        if not aiobotocore_installed():
            raise ValueError(MISSING)
        return self
