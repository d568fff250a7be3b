"""OTLP/HTTP receiver: ``POST /v1/traces|metrics|logs`` on FastAPI, served by uvicorn.

Protobuf and JSON share the port, routed by Content-Type, and every answer uses the
request's encoding. Each request holds its bytes against the gateway's in-flight budget
(:mod:`gateway.receivers.admission`) from its first byte to its answer. Bodies are read
incrementally so
an oversized body is refused (413) without being held in memory, and compressed bodies are
inflated with a hard cap (:mod:`gateway.codecs.compression`), so a bomb is refused too. Refusals the
client should retry are 429/503 with ``Retry-After``; never 500.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import grpc
from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.codecs.compression import decompress
from gateway.errors import RefusedError, TooLargeError, UnsupportedMediaTypeError
from gateway.otlp.batch import Signal
from gateway.otlp.json_codec import encode_json
from gateway.receivers.admission import Ticket
from gateway.receivers.ingest import COUNTED_ON_REFUSAL, Ingest
from gateway.receivers.status import plain_status, refusal_status, retry_after_header
from gateway.security.auth import ANONYMOUS, Identity

log = logging.getLogger("otelgate.receiver.http")

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# Compressed bodies larger than this are inflated in a worker thread, off the event loop.
INFLATE_OFF_LOOP_BYTES = 64 * 1024


async def read_body(request: Request, limit: int, ticket: Ticket) -> bytes:
    """The request body, refusing with 413 as soon as it is known to exceed ``limit``; the
    bytes are held on ``ticket`` as they arrive (a declared length is held up front)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit():
        if int(declared) > limit:
            raise TooLargeError(f"request body of {declared} bytes exceeds the limit of {limit}")
        ticket.grow(int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLargeError(f"request body exceeds the limit of {limit} bytes")
        if size > ticket.nbytes:
            ticket.grow(size - ticket.nbytes)
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(request: Request) -> str | None:
    """``application/x-protobuf`` or ``application/json`` from Content-Type, else None."""
    value = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if value in (PROTOBUF, "application/protobuf"):
        return PROTOBUF
    if value == JSON:
        return JSON
    return None


def _encode(message: object, kind: str) -> bytes:
    if kind == JSON:
        return encode_json(message)  # type: ignore[arg-type]
    return message.SerializeToString()  # type: ignore[attr-defined]


class OtlpHttpReceiver:
    """The FastAPI routes of one OTLP/HTTP receiver."""

    def __init__(self, ingest: Ingest, max_body_size: int, max_decompressed_size: int) -> None:
        self.ingest = ingest
        self.max_body_size = max_body_size
        self.max_decompressed_size = max_decompressed_size

    def app(self) -> ASGIApp:
        """The ASGI application: the three OTLP paths, in front of a FastAPI app."""
        app = FastAPI(
            title="otelgate OTLP/HTTP receiver",
            docs_url=None,
            redoc_url=None,
            openapi_url=None,
            redirect_slashes=False,  # /v1/traces/ is a 404 Status, not a redirect to Host
        )
        app.add_exception_handler(HTTPException, self._http_error)  # type: ignore[arg-type]
        for signal in Signal:
            app.add_route(f"/v1/{signal.value}", self._endpoint(signal), methods=["POST"])
        exports = {("POST", f"/v1/{signal.value}"): signal for signal in Signal}

        async def serve(scope: Scope, receive: Receive, send: Send) -> None:
            # The hot path skips FastAPI's middleware stack and router: for a POST to one of
            # the three paths they only add per-request calls (a tenth of the gateway's CPU
            # when profiled) and nothing the handler needs. handle() answers every refusal
            # itself; a bug's exception reaches uvicorn, which logs it and answers 500, as
            # FastAPI's error middleware would. Anything else (404, 405) goes to FastAPI.
            signal = exports.get((scope.get("method", ""), scope["path"]))
            if signal is None or scope["type"] != "http":
                await app(scope, receive, send)
                return
            response = await self.handle(signal, Request(scope, receive))
            await response(scope, receive, send)

        return serve

    def _endpoint(self, signal: Signal) -> Callable[[Request], Awaitable[Response]]:
        async def export(request: Request) -> Response:
            return await self.handle(signal, request)

        return export

    async def handle(self, signal: Signal, request: Request) -> Response:
        """Admit, read, decompress, ingest and answer one export request."""
        kind = media_type(request)
        try:
            identity = self._identify(signal, request)  # first: strangers learn nothing
            if kind is None:
                raise UnsupportedMediaTypeError(
                    f"unsupported Content-Type {request.headers.get('content-type')!r}; "
                    f"use {PROTOBUF} or {JSON}"
                )
            self.ingest.router(signal)  # no pipeline: refused before the body is read
            ticket = self.ingest.admission.admit()
        except RefusedError as exc:  # refused before ingest: counted per request
            if exc.reason not in COUNTED_ON_REFUSAL:
                self.ingest.refuse(signal, exc.reason)
            return self._refusal(exc, kind or JSON)
        try:
            return await self._admitted(signal, request, kind, ticket, identity)
        finally:
            ticket.release()

    def _identify(self, signal: Signal, request: Request) -> Identity:
        """Who sends (bearer token or client certificate), when authentication is on."""
        auth = self.ingest.auth
        if auth is None or not auth.enabled:
            return ANONYMOUS
        tls = request.scope.get("extensions", {}).get("tls") or {}
        client = request.scope.get("client")
        peer = f"{client[0]}:{client[1]}" if client else None
        return self.ingest.identify(
            signal, request.headers.get("authorization"), tls.get("client_cert_name"), peer
        )

    async def _admitted(
        self, signal: Signal, request: Request, kind: str, ticket: Ticket, identity: Identity
    ) -> Response:
        try:
            body = await self._body(request, ticket)
        except RefusedError as exc:  # refused before ingest: counted per request
            self.ingest.refuse(signal, exc.reason)
            return self._refusal(exc, kind)
        except ClientDisconnect:
            self.ingest.refuse(signal, "client_disconnect")
            return Response(status_code=400)
        try:
            response = await self.ingest.receive(
                signal, body, "json" if kind == JSON else "protobuf", identity
            )
        except RefusedError as exc:  # ingest counted it
            return self._refusal(exc, kind)
        return Response(_encode(response, kind), media_type=kind)

    async def _body(self, request: Request, ticket: Ticket) -> bytes:
        """The body, read and decompressed within the limits, held on ``ticket``."""
        body = await read_body(request, self.max_body_size, ticket)
        encoding = request.headers.get("content-encoding")
        if encoding is None or encoding.strip().lower() in ("", "identity"):
            return body
        limit = self.max_decompressed_size
        # zstd has no useful bound on its expansion (a 4-byte block can hold 128 KiB), so
        # it is always decoded off the loop; the others expand at most ~1000x.
        if len(body) > INFLATE_OFF_LOOP_BYTES or "zstd" in encoding.lower():
            body = await asyncio.to_thread(decompress, body, encoding, limit)
        else:
            body = decompress(body, encoding, limit)
        ticket.grow(len(body))
        return body

    async def _http_error(self, request: Request, exc: HTTPException) -> Response:
        """FastAPI's own refusals (404 unknown path, 405 wrong method) as ``google.rpc.Status``
        in the request's encoding, like every other error of this port (OTLP spec)."""
        kind = media_type(request) or JSON
        if exc.status_code == 405:
            message = f"method {request.method} not allowed on {request.url.path}; use POST"
        elif exc.status_code == 404:
            message = f"no such path {request.url.path}; use /v1/traces, /v1/metrics or /v1/logs"
        else:
            message = str(exc.detail)
        status = plain_status(grpc.StatusCode.UNIMPLEMENTED, message)
        return Response(
            _encode(status, kind),
            status_code=exc.status_code,
            media_type=kind,
            headers=dict(exc.headers or {}),
        )

    def _refusal(self, error: RefusedError, kind: str) -> Response:
        if error.http_status >= 500 and error.retry_after is None:
            log.error("refused export: %s", error)
        else:
            log.debug("refused export (%d): %s", error.http_status, error)
        headers = retry_after_header(error)
        if error.http_status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="otelgate"'
        return Response(
            _encode(refusal_status(error), kind),
            status_code=error.http_status,
            media_type=kind,
            headers=headers,
        )
