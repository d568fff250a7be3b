"""The configuration's pydantic models (``extra="forbid"`` everywhere) and value parsers.

Loading, env expansion and error reporting live in :mod:`gateway.config`, which re-exports
every model defined here.
"""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: object) -> float:
    """Seconds from a number or a duration string such as ``"500ms"``, ``"5s"``, ``"1m30s"``."""
    problem = f"invalid duration {value!r} (use seconds, e.g. 5 or 0.5, or 500ms, 5s, 2m, 1h)"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(problem)
    seconds, text, pos = 0.0, str(value).strip(), 0
    try:
        seconds = float(text)
    except ValueError:
        while (part := _DURATION_PART.match(text, pos)) is not None:
            seconds, pos = seconds + float(part[1]) * _UNIT_SECONDS[part[2]], part.end()
        if pos == 0 or pos != len(text):
            raise ValueError(problem) from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"duration must be zero or positive (got {value!r})")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _host_port(endpoint: str, *, listen: bool = True) -> tuple[str, int]:
    """Split ``host:port`` (IPv6 in brackets), with a message saying what is wrong."""
    host, sep, port_text = endpoint.rpartition(":")
    if not sep or not host:
        example = "0.0.0.0:4317" if listen else "collector.example:4317"
        raise ValueError(f"'{endpoint}' must be host:port, e.g. {example}")
    if host.startswith("[") and host.endswith("]"):
        try:
            host = str(ipaddress.IPv6Address(host[1:-1]))
        except ValueError:
            raise ValueError(f"'{host}' in '{endpoint}' is not an IPv6 address") from None
    elif not re.fullmatch(r"[A-Za-z0-9_.-]+", host):
        raise ValueError(f"'{host}' in '{endpoint}' is not a valid host name or address")
    low = 0 if listen else 1
    if not (port_text.isascii() and port_text.isdigit()) or not low <= int(port_text) <= 65535:
        raise ValueError(f"port '{port_text}' in '{endpoint}' must be a number in {low}..65535")
    return host, int(port_text)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _ListenEndpoint(_Model):
    """A listener: ``endpoint`` is ``host:port`` (port 0 picks a free port)."""

    endpoint: str

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str) -> str:
        _host_port(value)
        return value

    @property
    def host(self) -> str:
        """The host or address to bind."""
        return _host_port(self.endpoint)[0]

    @property
    def port(self) -> int:
        """The port to bind."""
        return _host_port(self.endpoint)[1]


class GrpcProtocolConfig(_ListenEndpoint):
    """OTLP/gRPC listener settings."""

    endpoint: str = "0.0.0.0:4317"
    max_recv_msg_size_mib: int = Field(default=64, gt=0)


class HttpProtocolConfig(_ListenEndpoint):
    """OTLP/HTTP listener settings; sizes are bytes."""

    endpoint: str = "0.0.0.0:4318"
    max_request_body_size: int = Field(default=64 * 1024 * 1024, gt=0)
    max_decompressed_size: int = Field(default=64 * 1024 * 1024, gt=0)


class OtlpProtocols(_Model):
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


class OtlpReceiverConfig(_Model):
    """The ``otlp`` receiver."""

    protocols: OtlpProtocols


class ResourceAction(_Model):
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


class ResourceProcessorConfig(_Model):
    """The ``resource`` processor: attribute changes applied in order."""

    attributes: list[ResourceAction] = Field(min_length=1)


class QueueSettings(_Model):
    """The exporter's bounded queue; when full, ``refuse`` upstream (retryable) or ``drop``."""

    enabled: bool = True
    queue_size: int = Field(default=100_000, gt=0)
    num_consumers: int = Field(default=4, ge=1)
    on_full: Literal["refuse", "drop"] = "refuse"


class RetrySettings(_Model):
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


class ExporterSettings(_Model):
    """What every exporter has: its queue and its retry policy."""

    sending_queue: QueueSettings = QueueSettings()
    retry_on_failure: RetrySettings = RetrySettings()


class TlsSettings(_Model):
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
    timeout: Duration = Field(default=10.0, gt=0)
    tls: TlsSettings | None = None

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
        return (scheme, *_host_port(rest.removesuffix("/"), listen=False)) if sep else (
            None, *_host_port(endpoint, listen=False))  # fmt: skip
    url = urlsplit(endpoint)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(f"'{endpoint}' must be an http:// or https:// URL for http/protobuf")
    if url.query or url.fragment or re.search(r"/v1/(traces|metrics|logs)/?$", url.path):
        raise ValueError(f"'{endpoint}' must be a base URL; /v1/traces etc. are appended")
    try:
        return url.scheme, url.hostname, url.port or (443 if url.scheme == "https" else 80)
    except ValueError:
        raise ValueError(f"port in '{endpoint}' must be a number in 1..65535") from None


class FileRotationSettings(_Model):
    """Rotate the file at ``max_megabytes``, keeping ``max_backups`` old files."""

    max_megabytes: int = Field(default=100, gt=0)
    max_backups: int = Field(default=5, ge=0)


class FileExporterConfig(ExporterSettings):
    """The ``file`` exporter: JSON lines, one OTLP request per line."""

    path: str = Field(min_length=1)
    rotation: FileRotationSettings = FileRotationSettings()
    format: Literal["json"] = "json"


class PipelineConfig(_Model):
    """One pipeline: component ids; processors run in the order given."""

    receivers: list[str] = Field(min_length=1)
    processors: list[str] = Field(default_factory=list)
    exporters: list[str] = Field(min_length=1)


class ServiceConfig(_Model):
    """Pipelines keyed by ``traces|metrics|logs[/name]`` and the shutdown budget."""

    pipelines: dict[str, PipelineConfig] = Field(min_length=1)
    shutdown_timeout: Duration = Field(default=10.0, gt=0)


class AdminConfig(_ListenEndpoint):
    """The admin listener (metrics, health, dashboard)."""

    endpoint: str = "127.0.0.1:8888"


class LoggingConfig(_Model):
    """The gateway's own logs."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"

    @field_validator("level", "format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class Config(_Model):
    """A whole, validated configuration."""

    receivers: dict[str, OtlpReceiverConfig] = Field(default_factory=dict)
    processors: dict[str, ResourceProcessorConfig] = Field(default_factory=dict)
    exporters: dict[str, OtlpExporterConfig | FileExporterConfig] = Field(default_factory=dict)
    service: ServiceConfig
    admin: AdminConfig = AdminConfig()
    logging: LoggingConfig = LoggingConfig()


COMPONENT_SECTIONS: dict[str, tuple[str, dict[str, type[BaseModel]]]] = {
    "receivers": ("receiver", {"otlp": OtlpReceiverConfig}),
    "processors": ("processor", {"resource": ResourceProcessorConfig}),
    "exporters": ("exporter", {"file": FileExporterConfig, "otlp": OtlpExporterConfig}),
}
SINGLE_SECTIONS: dict[str, type[BaseModel]] = {
    "service": ServiceConfig, "admin": AdminConfig, "logging": LoggingConfig
}  # fmt: skip
