"""The ``otlp`` exporter's configuration: endpoint (gRPC ``host:port`` or an HTTP base URL),
compression, headers, timeout, TLS and the largest request."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
)

from exporters.settings import DEFAULT_EXPORT_TIMEOUT, ExporterSettings, TlsSettings
from gateway.config.values import Duration, host_port

# gRPC servers refuse messages over 4 MiB by default (the Collector's OTLP receiver, Jaeger,
# Tempo): a bigger batch is sent in pieces under it.
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024


class OtlpExporterConfig(ExporterSettings):
    """The ``otlp`` exporter: gRPC ``host:port`` or an HTTP base URL for ``http/protobuf``."""

    protocol: Literal["grpc", "http/protobuf"] = "grpc"  # before endpoint: its check needs it
    endpoint: str
    compression: Literal["gzip", "none"] = "none"
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Duration = Field(default=DEFAULT_EXPORT_TIMEOUT, gt=0)
    tls: TlsSettings | None = None
    # Largest request sent, before compression; a bigger batch goes in pieces. 0: no limit.
    max_request_bytes: int = Field(default=DEFAULT_MAX_REQUEST_BYTES, ge=0)

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
