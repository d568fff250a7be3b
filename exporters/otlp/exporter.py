"""Generic OTLP forwarder over gRPC or HTTP/protobuf.

The batch's protobuf bytes are sent as they are (``batch.serialized()`` reuses the bytes the
gateway received when nothing changed them), so forwarding costs no re-encoding. Failures are
classified here, where the third-party error is caught, into the errors of
:mod:`gateway.errors`; retry and backoff are the queue's business.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import grpc
import grpc.aio
import httpx
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from exporters.base import ExporterBase, Refused
from exporters.http_post import error_text, post, ssl_verify
from exporters.otlp.config import DEFAULT_MAX_REQUEST_BYTES, OtlpExporterConfig
from gateway import __version__
from gateway.errors import (
    RefusedDataError,
    classify_grpc_status,
    classify_http_status,
)
from gateway.otlp.batch import Batch, Signal
from gateway.redact import redact_url
from gateway.registry import ALL_SIGNALS, ComponentFactory, Host

log = logging.getLogger(__name__)

USER_AGENT = f"otelgate/{__version__}"
OtlpProtocol = Literal["grpc", "http/protobuf"]
OtlpCompression = Literal["gzip", "none"]
ExportResponse = (
    ExportTraceServiceResponse | ExportMetricsServiceResponse | ExportLogsServiceResponse
)

_RESPONSE_TYPES: dict[Signal, type[ExportResponse]] = {
    Signal.TRACES: ExportTraceServiceResponse,
    Signal.METRICS: ExportMetricsServiceResponse,
    Signal.LOGS: ExportLogsServiceResponse,
}
_GRPC_METHODS = {
    Signal.TRACES: "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    Signal.METRICS: "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    Signal.LOGS: "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}
_STATUS_DETAILS_KEY = "grpc-status-details-bin"
# Compress bigger bodies in a worker thread so one large batch does not stall the event loop.
_THREAD_COMPRESS_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """TLS settings of an OTLP destination (Collector ``tls`` block in spirit)."""

    insecure: bool = False  # plaintext (gRPC); no effect on an https:// URL
    ca_file: str | None = None
    cert_file: str | None = None  # client certificate for mTLS
    key_file: str | None = None
    insecure_skip_verify: bool = False  # HTTP only; grpcio cannot skip verification


class OtlpExporter(ExporterBase):
    """Forwards batches to an OTLP endpoint (a Collector, Jaeger, another gateway...)."""

    sends_encoded_batches = True

    def __init__(
        self,
        endpoint: str,
        protocol: OtlpProtocol,
        compression: OtlpCompression = "none",
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        tls: TlsOptions | None = None,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    ) -> None:
        if protocol not in ("grpc", "http/protobuf"):
            raise ValueError(f"unsupported OTLP protocol {protocol!r}")
        if compression not in ("gzip", "none"):
            raise ValueError(f"unsupported compression {compression!r}")
        if protocol == "grpc" and tls is not None and tls.insecure_skip_verify:
            raise ValueError("insecure_skip_verify is not supported for gRPC; set ca_file")
        self.endpoint = endpoint.rstrip("/")
        self.protocol: OtlpProtocol = protocol
        self.compression: OtlpCompression = compression
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.tls = tls
        self.max_request_bytes = max_request_bytes  # before compression; 0 = no limit
        self._metadata = tuple((key.lower(), value) for key, value in self.headers.items())
        self.rejected_items = 0  # items the destination dropped via partial_success
        self._base_url = self.endpoint
        self._http: httpx.AsyncClient | None = None
        self._channel: grpc.aio.Channel | None = None
        self._calls: dict[Signal, grpc.aio.UnaryUnaryMultiCallable[bytes, Any]] = {}

    def __repr__(self) -> str:
        return f"OtlpExporter({redact_url(self.endpoint)!r}, {self.protocol!r})"

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._http is not None or self._channel is not None:
            return
        if self.protocol == "grpc":
            self._start_grpc()
        else:
            self._start_http()

    async def shutdown(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._calls.clear()

    async def push(self, batch: Batch) -> Refused | None:
        """Send one batch; raise a classified error when it was not accepted, return what the
        destination rejected (``partial_success``) when it kept the rest."""
        size = len(batch.serialized())
        if self.max_request_bytes and size > self.max_request_bytes and batch.items > 1:
            raise RefusedDataError(
                f"a request of {size} bytes is over max_request_bytes "
                f"({self.max_request_bytes}): sent in pieces",
                parts=math.ceil(size / self.max_request_bytes),
            )
        if self.protocol == "grpc":
            return await self._push_grpc(batch)
        return await self._push_http(batch)

    def _partial_success(self, signal: Signal, response: ExportResponse) -> Refused | None:
        if not response.HasField("partial_success"):
            return None
        partial = response.partial_success
        rejected = int(getattr(partial, f"rejected_{signal.item_name}"))
        if rejected:
            self.rejected_items += rejected
            reason = partial.error_message or "(no message)"
            return Refused(rejected, f"{redact_url(self.endpoint)} rejected them: {reason}")
        if partial.error_message:
            log.warning(
                "%s accepted %s with a warning: %s",
                redact_url(self.endpoint),
                signal.value,
                partial.error_message,
            )
        return None

    # --- HTTP --------------------------------------------------------------------------------

    def _start_http(self) -> None:
        self._base_url = self.endpoint
        if "://" not in self._base_url:
            secure = self.tls is not None and not self.tls.insecure
            self._base_url = ("https://" if secure else "http://") + self._base_url
        headers = {"User-Agent": USER_AGENT, **self.headers}
        self._http = httpx.AsyncClient(
            headers=headers, timeout=self.timeout, verify=ssl_verify(self.tls)
        )

    async def _push_http(self, batch: Batch) -> Refused | None:
        if self._http is None:
            raise RuntimeError(f"{self!r} used before start()")
        body = batch.serialized()
        headers = {"Content-Type": "application/x-protobuf"}
        if self.compression == "gzip":
            if len(body) >= _THREAD_COMPRESS_BYTES:
                body = await asyncio.to_thread(gzip.compress, body, 6)
            else:
                body = gzip.compress(body, 6)
            headers["Content-Encoding"] = "gzip"
        url = f"{self._base_url}/v1/{batch.signal.value}"
        response = await post(self._http, url, "OTLP/HTTP", body, headers)
        if 200 <= response.status_code < 300:
            return self._http_success(batch.signal, response)
        raise classify_http_status(
            response.status_code, _http_error_message(response), response.headers.get("Retry-After")
        )

    def _http_success(self, signal: Signal, response: httpx.Response) -> Refused | None:
        content_type = response.headers.get("Content-Type", "")
        if not response.content or "protobuf" not in content_type:
            return None
        message = _RESPONSE_TYPES[signal]()
        try:
            message.ParseFromString(response.content)
        except DecodeError:
            log.debug("%s: undecodable OTLP response body ignored", redact_url(self.endpoint))
            return None
        return self._partial_success(signal, message)

    # --- gRPC --------------------------------------------------------------------------------

    def _start_grpc(self) -> None:
        target, secure = _grpc_target(self.endpoint, self.tls)
        options: list[tuple[str, str | int]] = [
            ("grpc.primary_user_agent", USER_AGENT),
            # gRPC's reconnect backoff grows to 120 s by default, and while the channel waits
            # every export fails at once: cap it so a recovered backend is used within seconds.
            ("grpc.initial_reconnect_backoff_ms", 500),
            ("grpc.max_reconnect_backoff_ms", 5000),
        ]
        if secure:
            tls = self.tls or TlsOptions()
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(tls.ca_file),
                private_key=_read(tls.key_file),
                certificate_chain=_read(tls.cert_file),
            )
            self._channel = grpc.aio.secure_channel(target, credentials, options=options)
        else:
            self._channel = grpc.aio.insecure_channel(target, options=options)
        for signal, method in _GRPC_METHODS.items():
            self._calls[signal] = self._channel.unary_unary(
                method,
                request_serializer=None,  # the bytes are already a serialized request
                response_deserializer=_RESPONSE_TYPES[signal].FromString,
            )

    async def _push_grpc(self, batch: Batch) -> Refused | None:
        call = self._calls.get(batch.signal)
        if call is None:
            raise RuntimeError(f"{self!r} used before start()")
        metadata = self._metadata
        compression = grpc.Compression.Gzip if self.compression == "gzip" else None
        try:
            response = await call(
                batch.serialized(),
                timeout=self.timeout,
                metadata=metadata,
                compression=compression,
            )
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            delay = _retry_delay(exc.trailing_metadata())
            raise classify_grpc_status(code, exc.details() or "", delay) from exc
        return self._partial_success(batch.signal, response)


def _grpc_target(endpoint: str, tls: TlsOptions | None) -> tuple[str, bool]:
    """``host:port`` and whether to use TLS. An explicit scheme wins over ``tls.insecure``
    (as in the OTel exporter spec); without one, TLS is used when ``tls`` is given and not
    insecure."""
    if endpoint.startswith("https://"):
        return endpoint.removeprefix("https://"), True
    if endpoint.startswith("http://"):
        return endpoint.removeprefix("http://"), False
    return endpoint, tls is not None and not tls.insecure


def _read(path: str | None) -> bytes | None:
    if not path:
        return None
    with open(path, "rb") as handle:
        return handle.read()


def _http_error_message(response: httpx.Response) -> str:
    """The message of an OTLP error body (a google.rpc.Status), else the start of the text.
    Loki's OTLP endpoint sends its Status as ``application/octet-stream``."""
    content_type = response.headers.get("Content-Type", "")
    body = response.content
    if ("protobuf" in content_type or "octet-stream" in content_type) and body:
        try:
            status = status_pb2.Status.FromString(body)
        except DecodeError:
            pass
        else:
            if status.message:
                return status.message
    elif "json" in content_type and body:
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if isinstance(payload, dict) and isinstance(payload.get("message"), str):
            return str(payload["message"])
    return error_text(response)


def _retry_delay(trailing: grpc.aio.Metadata | None) -> float | None:
    """The ``google.rpc.RetryInfo`` delay (seconds) in a gRPC error's status details."""
    if not trailing:
        return None
    for key, value in trailing:
        if key != _STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        try:
            status = status_pb2.Status.FromString(value)
        except DecodeError:
            return None
        for detail in status.details:
            if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info = error_details_pb2.RetryInfo()
                detail.Unpack(info)
                delay = info.retry_delay
                return max(0.0, delay.seconds + delay.nanos / 1e9)
    return None


def create_otlp(name: str, config: OtlpExporterConfig, host: Host) -> OtlpExporter:
    """The OTLP exporter of an ``otlp`` (or ``jaeger``) entry."""
    tls = None
    if config.tls is not None:
        tls = TlsOptions(
            insecure=config.tls.insecure,
            ca_file=config.tls.ca_file,
            cert_file=config.tls.cert_file,
            key_file=config.tls.key_file,
            insecure_skip_verify=config.tls.insecure_skip_verify,
        )
    return OtlpExporter(
        endpoint=config.endpoint,
        protocol=config.protocol,
        compression=config.compression,
        headers=config.headers,
        timeout=config.timeout,
        tls=tls,
        max_request_bytes=config.max_request_bytes,
    )


FACTORY = ComponentFactory(
    kind="exporter",
    type_name="otlp",
    config=OtlpExporterConfig,
    signals=ALL_SIGNALS,
    create=create_otlp,
    example={"endpoint": "127.0.0.1:4317"},
)
