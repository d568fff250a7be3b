"""Loki exporter: the push API (snappy protobuf or JSON) or Loki's native OTLP endpoint.

Push mode turns log records into streams and entries (:mod:`exporters.loki.mapping`). A push
is at most ``max_request_bytes`` before compression (1 MiB, like Promtail's and Alloy's
batches): Loki's rate limiter counts uncompressed bytes against a burst of 6 MB by default, and
a push over the burst is answered 429 on every try. A bigger batch is sent in pieces.

Loki answers 204. What real Loki does with bad data, and what the exporter makes of it:

* a 400 names entries Loki refused (too old, too far behind, a line over its limit) while it
  stored the others: the batch is split and resent until the refused entries are isolated.
  Resending the stored ones does not duplicate them: Loki ignores an entry identical in
  timestamp and line to one it holds (Loki docs, "Timestamp ordering");
* a 500 whose message blames a name ("normalization for label name ... resulted in invalid
  name", "label name is empty") is about the data too, so it is split the same way; the
  mapping drops such names before they leave, so this only guards against new cases;
* 429 and 503 throttle (``Retry-After`` honoured), other 5xx are retried, other 4xx are final.

OTLP mode forwards the batch to ``{endpoint}/otlp/v1/logs`` through
:class:`exporters.otlp.exporter.OtlpExporter`, changed only where Loki's limits would refuse it
(:mod:`exporters.loki.otlp`).
"""

from __future__ import annotations

import asyncio
import gzip
import math
import re
from collections.abc import Callable, Mapping
from typing import Literal

import cramjam
import httpx
import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from exporters.base import ExporterBase, Refused
from exporters.http_post import error_text, post
from exporters.loki.config import DEFAULT_MAX_REQUEST_BYTES, LokiExporterConfig
from exporters.loki.mapping import (
    DEFAULT_RESOURCE_LABELS,
    LABEL_NAME,
    MAX_LABELS,
    Adjustments,
    Entry,
    Labels,
    StreamMapping,
    label_name,
    selector,
    severity_level,
)
from exporters.loki.otlp import fit_for_loki
from exporters.loki.proto import PushRequest
from exporters.otlp.exporter import USER_AGENT, OtlpExporter
from gateway.errors import (
    GatewayError,
    PermanentError,
    RefusedDataError,
    classify_push_status,
)
from gateway.otlp.batch import Batch, Signal
from gateway.redact import redact_url
from gateway.registry import ComponentFactory, Host

__all__ = [
    "DEFAULT_RESOURCE_LABELS", "LABEL_NAME", "MAX_LABELS", "LokiExporter", "StreamMapping",
    "label_name", "selector", "severity_level",
]  # fmt: skip

LokiProtocol = Literal["push", "otlp"]
LokiFormat = Literal["protobuf", "json"]

PUSH_PATH = "/loki/api/v1/push"
OTLP_PREFIX = "/otlp"  # OtlpExporter appends /v1/logs
_THREAD_ENCODE_ITEMS = 1000  # encode big batches in a worker thread, off the event loop
# Loki's 500s that blame the data, not the server (Prometheus otlptranslator's label namer).
_DATA_ERRORS_500 = re.compile(r"resulted in invalid name|label name is empty|only underscores")


# --- wire encodings -------------------------------------------------------------------------


def encode_protobuf(streams: Mapping[Labels, list[Entry]]) -> bytes:
    """The ``logproto.PushRequest`` bytes (snappy-compressed, block format, when sent)."""
    request = PushRequest()
    for labels, entries in streams.items():
        stream = request.streams.add(labels=selector(labels))
        for entry in entries:
            item = stream.entries.add(line=entry.line)
            item.timestamp.seconds, item.timestamp.nanos = divmod(entry.ns, 1_000_000_000)
            for name, value in entry.metadata:
                item.structuredMetadata.add(name=name, value=value)
    return request.SerializeToString()


def encode_json(streams: Mapping[Labels, list[Entry]]) -> bytes:
    """The JSON push body: ``values`` are ``[ns as string, line(, metadata)]``."""
    body = {
        "streams": [
            {
                "stream": dict(labels),
                "values": [
                    [str(e.ns), e.line, dict(e.metadata)] if e.metadata else [str(e.ns), e.line]
                    for e in entries
                ],
            }
            for labels, entries in streams.items()
        ]
    }
    return orjson.dumps(body)


def classify_loki_status(status: int, message: str, retry_after: str | None) -> GatewayError:
    """Loki's answers (see the module doc): data refused, throttled, transient or final."""
    return classify_push_status(status, message, retry_after, _DATA_ERRORS_500, "Loki")


# --- the exporter ---------------------------------------------------------------------------


class LokiExporter(ExporterBase):
    """Pushes log batches to Loki (see the module doc)."""

    def __init__(
        self,
        endpoint: str,
        *,
        protocol: LokiProtocol = "push",
        format: LokiFormat = "protobuf",
        compression: Literal["gzip", "none"] = "none",
        mapping: StreamMapping | None = None,
        tenant_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        on_adjusted: Callable[[Mapping[str, int]], None] | None = None,
    ) -> None:
        if protocol not in ("push", "otlp") or format not in ("protobuf", "json"):
            raise ValueError(f"unsupported Loki protocol/format {protocol!r}/{format!r}")
        self.endpoint = endpoint.rstrip("/")
        self.protocol: LokiProtocol = protocol
        self.format: LokiFormat = format
        self.compression = compression
        self.mapping = mapping or StreamMapping()
        self.timeout = timeout
        self.max_request_bytes = max_request_bytes  # before compression; 0 = no limit
        self.on_adjusted = on_adjusted  # told what the mapping changed to fit Loki
        self.headers = {"User-Agent": USER_AGENT, **(headers or {})}
        if tenant_id:
            self.headers["X-Scope-OrgID"] = tenant_id
        self._http: httpx.AsyncClient | None = None
        self._otlp: OtlpExporter | None = None
        if protocol == "otlp":
            self._otlp = OtlpExporter(
                self.endpoint + OTLP_PREFIX,
                "http/protobuf",
                compression=compression,
                headers=self.headers,
                timeout=timeout,
                max_request_bytes=max_request_bytes,
            )

    def __repr__(self) -> str:
        return f"LokiExporter({redact_url(self.endpoint)!r}, {self.protocol!r}, {self.format!r})"

    async def start(self) -> None:
        if self._otlp is not None:
            await self._otlp.start()
        elif self._http is None:
            self._http = httpx.AsyncClient(headers=self.headers, timeout=self.timeout)

    async def shutdown(self) -> None:
        if self._otlp is not None:
            await self._otlp.shutdown()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def encode(self, batch: Batch) -> tuple[bytes, dict[str, str]]:
        """The push request body and its headers for one logs batch."""
        payload, headers, _ = self._encode(batch)
        return self._compress(payload, headers), headers

    def _encode(self, batch: Batch) -> tuple[bytes, dict[str, str], Adjustments]:
        """The uncompressed push body, its headers and what the mapping had to change."""
        assert isinstance(batch.request, ExportLogsServiceRequest)
        adjusted = Adjustments()
        streams = self.mapping.streams(batch.request, adjusted)
        if self.format == "protobuf":
            return encode_protobuf(streams), {"Content-Type": "application/x-protobuf"}, adjusted
        return encode_json(streams), {"Content-Type": "application/json"}, adjusted

    def _compress(self, payload: bytes, headers: dict[str, str]) -> bytes:
        if self.format == "protobuf":
            return bytes(cramjam.snappy.compress_raw(payload))
        if self.compression == "gzip":
            headers["Content-Encoding"] = "gzip"
            return gzip.compress(payload, 6)
        return payload

    async def push(self, batch: Batch) -> Refused | None:
        """Send one logs batch; raise a classified error when Loki did not accept it."""
        if batch.signal is not Signal.LOGS:
            raise PermanentError(f"the loki exporter takes logs only, not {batch.signal}")
        if self._otlp is not None:
            adjusted = Adjustments()
            refused = await self._otlp.push(
                fit_for_loki(batch, self.mapping.max_line_bytes, adjusted)
            )
            if adjusted and self.on_adjusted is not None:
                self.on_adjusted(adjusted)
            return refused
        if self._http is None:
            raise RuntimeError(f"{self!r} used before start()")
        if batch.items >= _THREAD_ENCODE_ITEMS:
            payload, headers, adjusted = await asyncio.to_thread(self._encode, batch)
        else:
            payload, headers, adjusted = self._encode(batch)
        limit = self.max_request_bytes
        if limit and len(payload) > limit and batch.items > 1:
            raise RefusedDataError(
                f"a push of {len(payload)} bytes is over max_request_bytes ({limit}): "
                "sent in pieces",
                parts=math.ceil(len(payload) / limit),
            )
        body = self._compress(payload, headers)
        response = await post(self._http, self.endpoint + PUSH_PATH, "Loki", body, headers)
        if not 200 <= response.status_code < 300:
            raise classify_loki_status(
                response.status_code, error_text(response), response.headers.get("Retry-After")
            )
        if adjusted and self.on_adjusted is not None:
            self.on_adjusted(adjusted)
        return None


def create_loki(name: str, config: LokiExporterConfig, host: Host) -> LokiExporter:
    """The exporter of a ``loki`` entry; what it changes to fit Loki is counted."""
    mapping = StreamMapping(
        resource_labels=config.resource_labels,
        level_label=config.level_label,
        line_format=config.line_format,
        max_line_bytes=config.max_line_size,
    )
    return LokiExporter(
        config.endpoint,
        protocol=config.protocol,
        format=config.format,
        compression=config.compression,
        mapping=mapping,
        tenant_id=config.tenant_id,
        headers=config.headers,
        timeout=config.timeout,
        max_request_bytes=config.max_request_bytes,
        on_adjusted=host.metrics.adjusted_counter(name),
    )


FACTORY = ComponentFactory(
    kind="exporter",
    type_name="loki",
    config=LokiExporterConfig,
    signals=frozenset({Signal.LOGS}),
    create=create_loki,
    example={"endpoint": "http://127.0.0.1:3100"},
)
