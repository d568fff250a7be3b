"""The ingest path shared by the OTLP receivers: decode, validate, count, route, answer.

Transport-specific code (HTTP bodies, gRPC contexts) stays in the receivers; what happens to a
request body, and which response or refusal the client gets, is decided here once.

A body of at most :data:`FAST_PATH_BYTES` holding at most :data:`FAST_PATH_ENTRIES` entries
(groups and items; counted without a loop over them when there are more) is processed at once
on the event loop, the fast path. Any other is split on the wire into pieces of at most
:data:`~gateway.otlp.split.PIECE_BYTES`, which are decoded and validated in a worker thread (so the
loop keeps serving every listener meanwhile) and then processed one by one, yielding to the
loop between pieces: no request holds the loop for more than one piece's worth of work.
Either way the request is decoded in full before anything of it is accepted, so a request is
delivered whole or refused whole: room in every queue is checked for all its pieces first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from prometheus_client import Histogram

from gateway.errors import (
    BadRequestError,
    NoPipelineError,
    RateLimitedError,
    RefusedError,
    TooLargeError,
)
from gateway.observers import Observer, notify
from gateway.otlp.batch import Batch, ExportRequest, Signal, census, count_items
from gateway.otlp.json_codec import decode_json
from gateway.otlp.split import split_request
from gateway.otlp.validation import Rejection, validate
from gateway.otlp.wire import WireError
from gateway.pipeline import Router
from gateway.receivers.admission import Admission
from gateway.security.auth import ANONYMOUS, Authenticator, Identity
from gateway.selfmetrics import GatewayMetrics

Encoding = Literal["protobuf", "json"]
FAST_PATH_BYTES = 1024 * 1024
FAST_PATH_ENTRIES = 10_000
# Large requests are decoded here, two at a time: enough to keep a core busy while the loop
# serves the other; a third waits (its body is already counted by the in-flight budget).
_DECODER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="otelgate-decode")

# Refusal reasons Ingest.router() and Ingest.identify() count themselves when they raise.
COUNTED_ON_REFUSAL = frozenset(
    {"no_pipeline", "unauthenticated", "permission_denied", "rate_limited"}
)

ExportResponse = (
    ExportTraceServiceResponse | ExportMetricsServiceResponse | ExportLogsServiceResponse
)


def decode_protobuf(signal: Signal, body: bytes) -> ExportRequest:
    """Decode an OTLP protobuf request body, or raise :class:`BadRequestError`."""
    try:
        return signal.request_type.FromString(body)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise BadRequestError(f"cannot decode OTLP {signal} protobuf: {exc}") from exc


def decode(signal: Signal, body: bytes, encoding: Encoding) -> ExportRequest:
    """Decode an OTLP request body of either encoding, or raise :class:`BadRequestError`."""
    if encoding == "protobuf":
        return decode_protobuf(signal, body)
    try:
        return decode_json(signal, body)
    except ValueError as exc:
        raise BadRequestError(f"cannot decode OTLP/JSON {signal}: {exc}") from exc


@dataclass(slots=True)
class Piece:
    """One decoded and validated piece of a large request."""

    request: ExportRequest
    encoded: bytes | None  # its bytes, while validation left it unchanged
    nbytes: int
    items: int
    rejection: Rejection


def decode_pieces(signal: Signal, body: bytes, encoding: Encoding) -> list[Piece]:
    """A large request decoded and validated in pieces (runs in a worker thread)."""
    if encoding == "json":  # JSON is converted whole (its depth and shape checked), then cut
        body = decode(signal, body, "json").SerializeToString()
    try:
        parts = split_request(signal, body)
    except WireError as exc:
        raise BadRequestError(f"cannot decode OTLP {signal} protobuf: {exc}") from exc
    pieces = []
    for part in parts:
        request = decode_protobuf(signal, part)
        rejection = validate(signal, request)
        encoded = None if rejection.changed else part
        pieces.append(Piece(request, encoded, len(part), count_items(signal, request), rejection))
    return pieces


def build_response(signal: Signal, rejected: int, message: str) -> ExportResponse:
    """The Export*ServiceResponse; ``partial_success`` stays unset when nothing was rejected."""
    if signal is Signal.TRACES:
        traces = ExportTraceServiceResponse()
        if rejected or message:
            traces.partial_success.rejected_spans = rejected
            traces.partial_success.error_message = message
        return traces
    if signal is Signal.METRICS:
        metrics = ExportMetricsServiceResponse()
        if rejected or message:
            metrics.partial_success.rejected_data_points = rejected
            metrics.partial_success.error_message = message
        return metrics
    logs = ExportLogsServiceResponse()
    if rejected or message:
        logs.partial_success.rejected_log_records = rejected
        logs.partial_success.error_message = message
    return logs


class Ingest:
    """What one receiver does with decoded requests, for all three signals."""

    def __init__(
        self,
        transport: str,
        routers: Mapping[Signal, Router],
        metrics: GatewayMetrics,
        observers: Sequence[Observer] = (),
        admission: Admission | None = None,
        auth: Authenticator | None = None,
    ) -> None:
        self.transport = transport
        self.auth = auth
        self.routers = dict(routers)
        self.metrics = metrics
        # Shared by every receiver of the gateway; a receiver on its own gets one without limits.
        self.admission = admission or Admission(
            metrics, max_inflight_bytes=2**62, max_loop_delay=0.0
        )
        self.observers = observers  # shared with the gateway: observers added later count
        self._durations: dict[Signal, Histogram] = {}  # receiver_request_duration per signal

    def has_pipeline(self, signal: Signal) -> bool:
        return signal in self.routers

    def router(self, signal: Signal) -> Router:
        """The router of ``signal``, or :class:`NoPipelineError` (counted)."""
        router = self.routers.get(signal)
        if router is None:
            error = NoPipelineError(f"no {signal} pipeline uses this receiver")
            self.refuse(signal, error.reason)
            raise error
        return router

    def identify(
        self,
        signal: Signal,
        authorization: str | None,
        subject: str | None,
        peer: str | None = None,
    ) -> Identity:
        """The caller's identity, if it may send (``ingest`` scope) and is not over its rate
        limit already; else raises :class:`RefusedError` (counted per request)."""
        if self.auth is None or not self.auth.enabled:
            return ANONYMOUS
        try:
            identity = self.auth.authenticate(
                authorization, subject, scope="ingest", transport=self.transport, peer=peer
            )
            # Refused before the body is read when a request like the last one would be.
            self.auth.foresee(identity, signal.value, self.transport)
        except RefusedError as exc:
            self.refuse(signal, exc.reason)
            raise
        return identity

    def _charge(self, identity: Identity, signal: Signal, items: int, nbytes: int) -> None:
        """Charge the identity's rate limits for a decoded request (refusal counted)."""
        if self.auth is None or not identity.limits:
            return
        try:
            self.auth.charge(identity, signal.value, items, nbytes, self.transport)
        except RateLimitedError as exc:
            self.refuse(signal, exc.reason, items)
            raise

    def _give_back(self, identity: Identity, items: int, nbytes: int) -> None:
        if self.auth is not None:
            self.auth.give_back(identity, items, nbytes)

    async def receive(
        self, signal: Signal, body: bytes, encoding: Encoding, identity: Identity = ANONYMOUS
    ) -> ExportResponse:
        """Decode, validate and route one request body (see the module docstring) sent by
        ``identity`` (see :meth:`identify`); its duration is observed whatever the outcome.

        Raises :class:`RefusedError` to refuse it whole; refusals are counted here.
        """
        started = time.perf_counter()
        try:
            return await self._receive(signal, body, encoding, identity)
        finally:
            duration = self._durations.get(signal)
            if duration is None:
                duration = self.metrics.receiver_request_duration.labels(
                    signal.value, self.transport
                )
                self._durations[signal] = duration
            duration.observe(time.perf_counter() - started)

    async def _receive(
        self, signal: Signal, body: bytes, encoding: Encoding, identity: Identity
    ) -> ExportResponse:
        router = self.router(signal)
        try:
            if len(body) <= FAST_PATH_BYTES:
                request = decode(signal, body, encoding)
                items = census(signal, request, FAST_PATH_ENTRIES)
                if items is not None:
                    self._charge(identity, signal, items, len(body))
                    raw = body if encoding == "protobuf" else None
                    try:
                        return await self.export(signal, request, raw, len(body), items, identity)
                    except RefusedError:
                        self._give_back(identity, items, len(body))
                        raise
                del request  # too many entries for the loop: decoded again, in pieces
            loop = asyncio.get_running_loop()
            pieces = await loop.run_in_executor(_DECODER, decode_pieces, signal, body, encoding)
        except (BadRequestError, TooLargeError) as exc:  # undecodable: nothing was counted
            self.refuse(signal, exc.reason)
            raise
        sent = sum(p.items + p.rejection.count for p in pieces)  # as the fast path counts
        self._charge(identity, signal, sent, len(body))
        try:
            return await self._export_pieces(signal, router, pieces, identity)
        except RefusedError:
            self._give_back(identity, sent, len(body))
            raise

    async def _export_pieces(
        self, signal: Signal, router: Router, pieces: list[Piece], identity: Identity
    ) -> ExportResponse:
        rejection = Rejection()
        for piece in pieces:
            rejection.merge(piece.rejection)
        self.refuse(signal, "invalid", rejection.count)
        items = sum(p.items for p in pieces)
        try:
            router.check_room(items, sum(p.nbytes for p in pieces))
        except RefusedError as exc:
            self.refuse(signal, exc.reason, items)
            raise
        accepted = self.metrics.receiver_accepted.labels(signal.value, self.transport)
        for index, piece in enumerate(pieces):
            if not piece.items:
                continue
            batch = Batch(signal, piece.request, piece.items, piece.encoded, piece.nbytes)
            if identity.stamp:
                Authenticator.stamp(identity, batch)
            try:
                await router.consume(batch, checked=True)
            except RefusedError as exc:  # shutting down, or a spool that cannot write
                self.refuse(signal, exc.reason, sum(p.items for p in pieces[index:]))
                raise
            accepted.inc(piece.items)
            notify(self.observers, batch)
            await asyncio.sleep(0)  # let the loop serve others between pieces
        if self.auth is not None:  # pieces count their valid items only
            self.auth.accepted(identity, signal.value, items, self.transport)
        return build_response(signal, rejection.count, rejection.message)

    def refuse(self, signal: Signal, reason: str, items: int | None = None) -> None:
        """Count a refusal: its items when known (zero counts nothing), else the request."""
        if items is None:
            counter = self.metrics.receiver_requests_refused
            counter.labels(signal.value, self.transport, reason).inc()
        elif items:
            counter = self.metrics.receiver_refused
            counter.labels(signal.value, self.transport, reason).inc(items)

    async def export(
        self,
        signal: Signal,
        request: ExportRequest,
        encoded: bytes | None,
        nbytes: int | None = None,
        items: int | None = None,
        identity: Identity = ANONYMOUS,
        count_refused: bool = True,
    ) -> ExportResponse:
        """Validate and route one decoded request (``nbytes``: the size it arrived with;
        ``items``: its items before validation, if counted) sent by ``identity``, whose
        resource attributes it gets. Raises :class:`RefusedError` to refuse it whole, counted
        as refused unless ``count_refused`` is false (a caller that retries counts it)."""
        router = self.router(signal)
        rejection = validate(signal, request)
        # Validation removes exactly the items it rejects (and item-less groups).
        if items is None:
            batch = Batch.from_request(signal, request, nbytes)
        else:
            batch = Batch(signal, request, items - rejection.count, None, nbytes)
        # Keep the received bytes only if validation removed nothing: then they still match.
        if not rejection.changed:
            batch.encoded = encoded
        self.refuse(signal, "invalid", rejection.count)
        if batch.items:
            if identity.stamp:
                Authenticator.stamp(identity, batch)
            try:
                await router.consume(batch)
            except RefusedError as exc:
                if count_refused:
                    self.refuse(signal, exc.reason, batch.items)
                raise
            self.metrics.receiver_accepted.labels(signal.value, self.transport).inc(batch.items)
            notify(self.observers, batch)
        if self.auth is not None:
            self.auth.accepted(identity, signal.value, batch.items, self.transport)
        return build_response(signal, rejection.count, rejection.message)
