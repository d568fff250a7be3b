"""Configuration models of the exporters and of the queue and retry settings they share."""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from exporters.loki import DEFAULT_MAX_REQUEST_BYTES as LOKI_MAX_REQUEST_BYTES
from exporters.loki import DEFAULT_RESOURCE_LABELS as LOKI_DEFAULT_RESOURCE_LABELS
from exporters.loki import LABEL_NAME as LOKI_LABEL_NAME
from exporters.otlp import DEFAULT_MAX_REQUEST_BYTES as OTLP_MAX_REQUEST_BYTES
from exporters.remote_write_send import (
    DEFAULT_MAX_REQUEST_BYTES as REMOTE_WRITE_MAX_REQUEST_BYTES,
)
from gateway.config_base import Duration, StrictModel, host_port

MEMORY_QUEUE_BYTES = 64 * 1024 * 1024
DISK_QUEUE_BYTES = 1024 * 1024 * 1024


class QueueSettings(StrictModel):
    """The exporter's bounded queue; when full, ``refuse`` upstream (retryable) or ``drop``."""

    enabled: bool = True
    queue_size: int = Field(default=100_000, gt=0)
    num_consumers: int = Field(default=4, ge=1)
    on_full: Literal["refuse", "drop"] = "refuse"
    # A memory queue is bounded by queue_size items and max_bytes (default 64 MiB) bytes, each
    # batch counted at the size it arrived with. storage: disk spools every batch (synced
    # before the client's answer); max_bytes (default 1 GiB), not queue_size, then bounds the
    # queue. directory None: <data dir>/spool/<exporter id>.
    storage: Literal["memory", "disk"] = "memory"
    directory: str | None = Field(default=None, min_length=1)
    max_bytes: int | None = Field(default=None, gt=0)
    # Exporters that forward OTLP bytes (otlp, jaeger) send the batches of a memory queue as
    # one request: what waits, or arrives within merge_timeout, up to the limits (4 MB: under
    # gRPC's default 4 MiB message cap). See exporters/merging.py.
    merge_batches: bool = True
    merge_max_items: int = Field(default=8192, gt=0)
    merge_max_bytes: int = Field(default=4_000_000, gt=0)
    merge_timeout: Duration = Field(default=0.2, ge=0)

    @model_validator(mode="after")
    def _disk_needs_queue(self) -> QueueSettings:
        if self.storage == "disk" and not self.enabled:
            raise ValueError("storage: disk needs the queue (enabled: true)")
        return self

    @property
    def byte_limit(self) -> int:
        """``max_bytes``, or the default of the storage."""
        if self.max_bytes is not None:
            return self.max_bytes
        return DISK_QUEUE_BYTES if self.storage == "disk" else MEMORY_QUEUE_BYTES


class RetrySettings(StrictModel):
    """Exponential backoff; durations in seconds, ``max_elapsed_time`` 0 retries forever."""

    enabled: bool = True
    initial_interval: Duration = Field(default=1.0, gt=0)
    max_interval: Duration = Field(default=30.0, gt=0)
    multiplier: float = Field(default=2.0, ge=1)
    randomization_factor: float = Field(default=0.5, ge=0, le=1)
    max_elapsed_time: Duration = Field(default=300.0, ge=0)

    @field_validator("max_interval")
    @classmethod
    def _not_below_initial(cls, value: float, info: ValidationInfo) -> float:
        if value < info.data.get("initial_interval", 0.0):
            raise ValueError(f"must be at least initial_interval ({info.data['initial_interval']})")
        return value


# Long enough that a slow backend answers before the request is given up and sent again: a
# backend that finishes a request after the client timed out stores its items twice.
DEFAULT_EXPORT_TIMEOUT = 30.0


class ExporterSettings(StrictModel):
    """What every exporter has: its queue and its retry policy."""

    sending_queue: QueueSettings = QueueSettings()
    retry_on_failure: RetrySettings = RetrySettings()

    @model_validator(mode="after")
    def _spool_retries_forever(self) -> ExporterSettings:
        """A disk spool is there to outlast outages: unless set, never give up on a batch."""
        retry, disk = self.retry_on_failure, self.sending_queue.storage == "disk"
        if disk and "max_elapsed_time" not in retry.model_fields_set:
            self.retry_on_failure = retry.model_copy(update={"max_elapsed_time": 0.0})
        return self


class TlsSettings(StrictModel):
    """Client TLS; ``insecure`` means plaintext, ``insecure_skip_verify`` skips verification."""

    insecure: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure_skip_verify: bool = False

    @model_validator(mode="after")
    def _cert_with_key(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file must be given together")
        return self


class OtlpExporterConfig(ExporterSettings):
    """The ``otlp`` exporter: gRPC ``host:port`` or an HTTP base URL for ``http/protobuf``."""

    protocol: Literal["grpc", "http/protobuf"] = "grpc"  # before endpoint: its check needs it
    endpoint: str
    compression: Literal["gzip", "none"] = "none"
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Duration = Field(default=DEFAULT_EXPORT_TIMEOUT, gt=0)
    tls: TlsSettings | None = None
    # Largest request sent, before compression; a bigger batch goes in pieces. 0: no limit.
    max_request_bytes: int = Field(default=OTLP_MAX_REQUEST_BYTES, ge=0)

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str, info: ValidationInfo) -> str:
        if "protocol" in info.data:
            _split_target(value, info.data["protocol"])
        return value

    @property
    def host(self) -> str:
        """The destination host."""
        return _split_target(self.endpoint, self.protocol)[1]

    @property
    def port(self) -> int:
        """The destination port (80/443 when an HTTP URL names none)."""
        return _split_target(self.endpoint, self.protocol)[2]


def _split_target(endpoint: str, protocol: str) -> tuple[str | None, str, int]:
    """``(scheme or None, host, port)`` of an exporter endpoint, checked for ``protocol``."""
    scheme, sep, rest = endpoint.partition("://")
    if protocol == "grpc":
        if sep and scheme not in ("http", "https"):
            raise ValueError(f"'{endpoint}' must be host:port, optionally after http(s)://")
        return (scheme, *host_port(rest.removesuffix("/"), listen=False)) if sep else (
            None, *host_port(endpoint, listen=False))  # fmt: skip
    url = urlsplit(endpoint)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(f"'{endpoint}' must be an http:// or https:// URL for http/protobuf")
    if url.query or url.fragment or re.search(r"/v1/(traces|metrics|logs)/?$", url.path):
        raise ValueError(f"'{endpoint}' must be a base URL; /v1/traces etc. are appended")
    try:
        return url.scheme, url.hostname, url.port or (443 if url.scheme == "https" else 80)
    except ValueError:
        raise ValueError(f"port in '{endpoint}' must be a number in 1..65535") from None


class FileRotationSettings(StrictModel):
    """Rotate the file at ``max_megabytes``, keeping ``max_backups`` old files."""

    max_megabytes: int = Field(default=100, gt=0)
    max_backups: int = Field(default=5, ge=0)


class FileExporterConfig(ExporterSettings):
    """The ``file`` exporter: JSON lines, one OTLP request per line."""

    path: str = Field(min_length=1)
    rotation: FileRotationSettings = FileRotationSettings()
    format: Literal["json"] = "json"


_ADMIN_PATHS = ("/metrics", "/health", "/slo", "/alerts", "/errors", "/api", "/docs")


class PrometheusExporterConfig(ExporterSettings):
    """The ``prometheus`` pull exporter, metrics only: served on the admin listener at
    ``path``; series not updated for ``metric_expiration`` are removed; a metric takes at
    most ``max_series_per_metric`` series (0 = no limit). ``created_series`` adds the
    ``_created`` samples (off, as in the Collector: one more series per counter/histogram)."""

    path: str = "/metrics/otlp"
    metric_expiration: Duration = Field(default=300.0, gt=0)
    max_series_per_metric: int = Field(default=2000, ge=0)
    created_series: bool = False

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str) -> str:
        if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", value):
            raise ValueError(f"'{value}' must be a URL path such as /metrics/otlp")
        if value in _ADMIN_PATHS or value == "/" or value.startswith("/health/"):
            raise ValueError(f"'{value}' is an admin route of the gateway; pick another path")
        return value


class PrometheusRemoteWriteExporterConfig(ExporterSettings):
    """The ``prometheusremotewrite`` exporter, metrics only: remote write 1.0 to
    ``endpoint`` (the full URL, e.g. ``http://prometheus:9090/api/v1/write``). One queue
    consumer by default, so each series' samples arrive in time order. ``created_series``
    also sends ``<name>_created`` series (off by default, as in the Collector)."""

    endpoint: str
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Duration = Field(default=DEFAULT_EXPORT_TIMEOUT, gt=0)
    metric_expiration: Duration = Field(default=300.0, gt=0)
    created_series: bool = False
    # Largest request sent, before snappy; more series go in several requests. 0: no limit.
    max_request_bytes: int = Field(default=REMOTE_WRITE_MAX_REQUEST_BYTES, ge=0)
    sending_queue: QueueSettings = QueueSettings(num_consumers=1)

    @field_validator("endpoint")
    @classmethod
    def _url(cls, value: str) -> str:
        url = urlsplit(value)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(
                f"'{value}' must be an http:// or https:// URL, e.g. "
                "http://prometheus:9090/api/v1/write"
            )
        try:
            url.port  # noqa: B018  # raises on a bad port
        except ValueError:
            raise ValueError(f"port in '{value}' must be a number in 1..65535") from None
        return value


class JaegerExporterConfig(OtlpExporterConfig):
    """The ``jaeger`` exporter: OTLP to a Jaeger collector, traces only. ``endpoint`` defaults
    to ``jaeger:4317`` (gRPC) or ``http://jaeger:4318`` (``protocol: http/protobuf``)."""

    @model_validator(mode="before")
    @classmethod
    def _default_endpoint(cls, data: Any) -> Any:
        if isinstance(data, dict) and "endpoint" not in data:
            http = data.get("protocol") == "http/protobuf"
            return {**data, "endpoint": "http://jaeger:4318" if http else "jaeger:4317"}
        return data


_LOKI_PUSH_ONLY = ("format", "line_format", "resource_labels", "level_label")


class LokiExporterConfig(ExporterSettings):
    """The ``loki`` exporter, logs only: the push API (snappy protobuf or JSON) or, with
    ``protocol: otlp``, Loki's native OTLP endpoint. ``endpoint`` is Loki's base URL."""

    endpoint: str
    protocol: Literal["push", "otlp"] = "push"
    format: Literal["protobuf", "json"] = "protobuf"
    compression: Literal["gzip", "none"] = "none"
    line_format: Literal["text", "json"] = "text"
    resource_labels: dict[str, str] = Field(
        default_factory=lambda: dict(LOKI_DEFAULT_RESOURCE_LABELS)
    )
    level_label: bool = False
    max_line_size: int = Field(default=256 * 1024, gt=0)
    tenant_id: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Duration = Field(default=DEFAULT_EXPORT_TIMEOUT, gt=0)
    # Largest push, before compression (Loki's rate limit counts uncompressed bytes). 0: none.
    max_request_bytes: int = Field(default=LOKI_MAX_REQUEST_BYTES, ge=0)

    @field_validator("endpoint")
    @classmethod
    def _base_url(cls, value: str) -> str:
        url = urlsplit(value)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"'{value}' must be an http:// or https:// URL, e.g. http://loki:3100")
        if url.query or url.fragment or re.search(r"/(loki/api/v1/push|otlp(/v1/logs)?)/?$",
                                                  url.path):  # fmt: skip
            raise ValueError(f"'{value}' must be Loki's base URL; the API path is appended")
        try:
            url.port  # noqa: B018  # raises on a bad port
        except ValueError:
            raise ValueError(f"port in '{value}' must be a number in 1..65535") from None
        return value

    @field_validator("resource_labels")
    @classmethod
    def _label_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key, name in value.items():
            if not LOKI_LABEL_NAME.fullmatch(name):
                raise ValueError(
                    f"label name '{name}' (for '{key}') must match [a-zA-Z_][a-zA-Z0-9_]*"
                )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> LokiExporterConfig:
        names = set(self.resource_labels.values())
        if self.level_label and "level" in names:
            raise ValueError(
                "label 'level' is set from the severity; turn off level_label to map it"
            )
        misplaced = [k for k in _LOKI_PUSH_ONLY if k in self.model_fields_set]
        if self.protocol == "otlp" and misplaced:
            raise ValueError(f"{', '.join(misplaced)} apply to protocol: push only")
        if self.protocol == "push" and self.format == "protobuf" and self.compression == "gzip":
            raise ValueError("compression is for format: json or protocol: otlp; protobuf push "
                             "is always snappy-compressed")  # fmt: skip
        return self
