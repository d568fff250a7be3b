"""The ``elasticsearch`` exporter's configuration: the cluster's URL, the document mapping and
data stream, credentials, TLS and the largest bulk request."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from exporters.elasticsearch.mapping import MappingMode, data_stream_part
from exporters.settings import DEFAULT_EXPORT_TIMEOUT, ExporterSettings, TlsSettings
from gateway.config.values import Duration, Size, StrictModel

# Largest bulk request, before compression. The Collector's exporter flushes at 5e6 bytes;
# Elastic's tuning guide suggests starting around 5 MB; Elasticsearch refuses a request over
# http.max_content_length (100mb by default) with a 413.
DEFAULT_MAX_REQUEST_BYTES = 5_000_000


class MappingSettings(StrictModel):
    """How a log record becomes a document: ``otel`` (OpenTelemetry-native, like the
    Collector's default) or ``ecs`` (Elastic Common Schema)."""

    mode: MappingMode = "otel"


class DataStreamSettings(StrictModel):
    """The data stream, ``logs-<dataset>-<namespace>``, unless a record, its scope or its
    resource names another with ``data_stream.dataset`` / ``data_stream.namespace``."""

    dataset: str = Field(default="generic", min_length=1)
    namespace: str = Field(default="default", min_length=1)

    @field_validator("dataset", "namespace")
    @classmethod
    def _valid_part(cls, value: str) -> str:
        if data_stream_part(value) != value:
            raise ValueError(
                f"'{value}' is not a valid data stream part: lowercase, no '-', no spaces or "
                '\\ / * ? " < > | , # :, at most 100 characters'
            )
        return value


class ElasticsearchExporterConfig(ExporterSettings):
    """The ``elasticsearch`` exporter, logs only: the ``_bulk`` API into data streams."""

    endpoint: str
    mapping: MappingSettings = MappingSettings()
    data_stream: DataStreamSettings = DataStreamSettings()
    api_key: str | None = Field(default=None, min_length=1)
    user: str | None = Field(default=None, min_length=1)
    password: str | None = None
    pipeline: str | None = Field(default=None, min_length=1)
    compression: Literal["gzip", "none"] = "gzip"
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Duration = Field(default=DEFAULT_EXPORT_TIMEOUT, gt=0)
    tls: TlsSettings | None = None
    # Largest bulk request, before compression; a bigger batch goes in pieces. 0: no limit.
    max_request_bytes: Size = Field(default=DEFAULT_MAX_REQUEST_BYTES, ge=0)

    @field_validator("endpoint")
    @classmethod
    def _base_url(cls, value: str) -> str:
        url = urlsplit(value)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"'{value}' must be an http:// or https:// URL, e.g. http://es:9200")
        if url.query or url.fragment or re.search(r"/_bulk/?$", url.path):
            raise ValueError(f"'{value}' must be the cluster's base URL; /_bulk is appended")
        try:
            url.port  # noqa: B018  # raises on a bad port
        except ValueError:
            raise ValueError(f"port in '{value}' must be a number in 1..65535") from None
        if url.username or url.password:
            raise ValueError("put credentials in user/password or api_key, not in the URL")
        return value

    @model_validator(mode="after")
    def _one_credential(self) -> ElasticsearchExporterConfig:
        if self.api_key and (self.user or self.password):
            raise ValueError("give api_key or user/password, not both")
        if (self.user is None) != (self.password is None):
            raise ValueError("user and password must be given together")
        if self.api_key or self.user:
            named = [name for name in self.headers if name.lower() == "authorization"]
            if named:
                raise ValueError(f"headers.{named[0]} conflicts with api_key/user")
        return self
