"""The ``loki`` exporter's configuration: Loki's base URL, push API or OTLP, labels, limits."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from exporters.loki.mapping import DEFAULT_RESOURCE_LABELS as LOKI_DEFAULT_RESOURCE_LABELS
from exporters.loki.mapping import LABEL_NAME as LOKI_LABEL_NAME
from exporters.settings import DEFAULT_EXPORT_TIMEOUT, ExporterSettings
from gateway.config.values import Duration

# Largest push, before compression: Loki's rate limit counts uncompressed bytes.
DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024
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
    max_request_bytes: int = Field(default=DEFAULT_MAX_REQUEST_BYTES, ge=0)

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
