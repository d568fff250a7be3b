"""Elasticsearch exporter: log records into data streams through the ``_bulk`` API.

Each log record becomes one document (:mod:`exporters.elasticsearch.mapping`, ``otel`` or
``ecs``) created in ``logs-<dataset>-<namespace>``. One batch is one bulk request of at most
``max_request_bytes`` before compression (a bigger one is cut in pieces by the queue). The
answer is read per document (:mod:`exporters.elasticsearch.bulk`): the documents Elasticsearch
throttled or failed on a shard are retried alone, with the queue's backoff; those it refused
for their content are counted failed, with the reason, and never cost the others.

Why httpx and not the official client's ``async_bulk`` helper: the helper retries throttled
documents itself (sleeping inside the call, outside the queue's retry clock and its counts),
chunks by its own sizes, and needs aiohttp. The gateway's queue already owns retry, backoff,
splitting, the disk spool and counting, so the exporter only has to speak the wire format.
The request is the one the official client sends: NDJSON, ``Content-Type:
application/x-ndjson`` (every version since 5.x takes it; the client's ``compatible-with``
media types are refused by 7.x), ``Authorization: ApiKey ...`` or Basic.
"""

from __future__ import annotations

import asyncio
import gzip
import math
from collections.abc import Mapping
from typing import Literal

import httpx

from exporters.base import ExporterBase, Partial, Refused
from exporters.elasticsearch.bulk import (
    FILTER_PATH,
    classify_bulk_status,
    encode_bulk,
    read_bulk_answer,
)
from exporters.elasticsearch.config import ElasticsearchExporterConfig
from exporters.elasticsearch.mapping import DocumentMapping
from exporters.http_post import post, ssl_verify
from exporters.otlp.exporter import USER_AGENT
from exporters.settings import TlsSettings
from exporters.splitting import select_items
from gateway.errors import PermanentError, RefusedDataError, RetryableError, ThrottledError
from gateway.otlp.batch import Batch, Signal
from gateway.redact import redact_url
from gateway.registry import ComponentFactory, Host

BULK_PATH = "/_bulk"
_THREAD_ENCODE_ITEMS = 1000  # map and encode big batches in a worker thread
_THREAD_ENCODE_BYTES = 256 * 1024
_THREAD_COMPRESS_BYTES = 256 * 1024


class ElasticsearchExporter(ExporterBase):
    """Sends log batches to Elasticsearch's ``_bulk`` API (see the module doc)."""

    def __init__(
        self,
        endpoint: str,
        *,
        mapping: DocumentMapping | None = None,
        api_key: str | None = None,
        user: str | None = None,
        password: str | None = None,
        pipeline: str | None = None,
        compression: Literal["gzip", "none"] = "gzip",
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        tls: TlsSettings | None = None,
        max_request_bytes: int = 5_000_000,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.mapping = mapping or DocumentMapping()
        self.compression = compression
        self.timeout = timeout
        self.tls = tls
        self.max_request_bytes = max_request_bytes
        self.headers = {
            "User-Agent": USER_AGENT,
            "Content-Type": "application/x-ndjson",
            "Accept": "application/json",
            **(headers or {}),
        }
        if api_key:
            self.headers["Authorization"] = f"ApiKey {api_key}"
        self._auth = httpx.BasicAuth(user, password or "") if user else None
        params = {"filter_path": FILTER_PATH} | ({"pipeline": pipeline} if pipeline else {})
        self._url = str(httpx.URL(self.endpoint + BULK_PATH, params=params))
        self._http: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"ElasticsearchExporter({redact_url(self.endpoint)!r}, {self.mapping.mode!r})"

    async def start(self) -> None:
        if self._http is None:
            self._http = httpx.AsyncClient(
                headers=self.headers,
                auth=self._auth,
                timeout=self.timeout,
                verify=ssl_verify(self.tls),
            )

    async def shutdown(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def encode(self, batch: Batch) -> bytes:
        """The bulk request body (uncompressed) for one logs batch."""
        return encode_bulk(self.mapping.documents(batch.request))  # type: ignore[arg-type]

    async def push(self, batch: Batch) -> Refused | Partial | None:
        """Send one logs batch; retry only what Elasticsearch asked for again."""
        if batch.signal is not Signal.LOGS:
            raise PermanentError(f"the elasticsearch exporter takes logs only, not {batch.signal}")
        if self._http is None:
            raise RuntimeError(f"{self!r} used before start()")
        limit = self.max_request_bytes
        if limit and batch.nbytes > limit and batch.items > 1:
            # Documents are bigger than the protobuf they come from: cut before mapping.
            raise RefusedDataError(
                f"a batch of {batch.nbytes} bytes makes a bulk request over max_request_bytes "
                f"({limit}): sent in pieces",
                parts=math.ceil(batch.nbytes / limit),
            )
        if batch.items >= _THREAD_ENCODE_ITEMS or batch.nbytes >= _THREAD_ENCODE_BYTES:
            payload = await asyncio.to_thread(self.encode, batch)
        else:
            payload = self.encode(batch)
        if limit and len(payload) > limit and batch.items > 1:
            raise RefusedDataError(
                f"a bulk request of {len(payload)} bytes is over max_request_bytes ({limit}): "
                "sent in pieces",
                parts=math.ceil(len(payload) / limit),
            )
        headers: dict[str, str] = {}
        if self.compression == "gzip":
            headers["Content-Encoding"] = "gzip"
            if len(payload) >= _THREAD_COMPRESS_BYTES:
                payload = await asyncio.to_thread(gzip.compress, payload, 1)
            else:
                payload = gzip.compress(payload, 1)
        response = await post(self._http, self._url, "Elasticsearch", payload, headers)
        if not 200 <= response.status_code < 300:
            raise classify_bulk_status(
                response.status_code, response.content, response.headers.get("Retry-After")
            )
        outcome = read_bulk_answer(response.content, batch.items)
        if outcome.retry:
            error_type = ThrottledError if 429 in outcome.retry_statuses else RetryableError
            return Partial(
                select_items(batch, set(outcome.retry)),
                error_type(outcome.retry_reason()),
                outcome.refused,
                outcome.refusal_reason(),
            )
        if outcome.refused:
            return Refused(outcome.refused, outcome.refusal_reason())
        return None


def create_elasticsearch(
    name: str, config: ElasticsearchExporterConfig, host: Host
) -> ElasticsearchExporter:
    """The exporter of an ``elasticsearch`` entry."""
    mapping = DocumentMapping(
        mode=config.mapping.mode,
        dataset=config.data_stream.dataset,
        namespace=config.data_stream.namespace,
    )
    return ElasticsearchExporter(
        config.endpoint,
        mapping=mapping,
        api_key=config.api_key,
        user=config.user,
        password=config.password,
        pipeline=config.pipeline,
        compression=config.compression,
        headers=config.headers,
        timeout=config.timeout,
        tls=config.tls,
        max_request_bytes=config.max_request_bytes,
    )


FACTORY = ComponentFactory(
    kind="exporter",
    type_name="elasticsearch",
    config=ElasticsearchExporterConfig,
    signals=frozenset({Signal.LOGS}),
    create=create_elasticsearch,
    example={"endpoint": "http://127.0.0.1:9200"},
)
