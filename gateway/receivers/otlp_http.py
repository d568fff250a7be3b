"""OTLP/HTTP receiver: ``POST /v1/traces|metrics|logs`` on FastAPI, served by uvicorn.

Protobuf and JSON share the port, routed by Content-Type, and every answer uses the
request's encoding. Bodies are read incrementally so an oversized body is refused (413)
without being held in memory, and gzip is inflated with a hard cap so a gzip bomb is refused
too. Refusals the client should retry are 429/503 with ``Retry-After``; never 500.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.batch import ExportRequest, Signal
from gateway.errors import BadRequestError, RefusedError, TooLargeError, UnsupportedMediaTypeError
from gateway.otlp_json import decode_json, encode_json
from gateway.receivers.ingest import Ingest, decode_protobuf
from gateway.receivers.status import refusal_status, retry_after_header

log = logging.getLogger("otelgate.receiver.http")

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing with 413 as soon as it is known to exceed ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLargeError(f"request body of {declared} bytes exceeds the limit of {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLargeError(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def gunzip(body: bytes, limit: int) -> bytes:
    """Inflate a gzip body, refusing (413) once the output would exceed ``limit`` bytes."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadRequestError(f"invalid gzip body: {exc}") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise TooLargeError(f"decompressed body exceeds the limit of {limit} bytes")
    if not inflater.eof:
        raise BadRequestError("invalid gzip body: truncated")
    return out


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
        app = FastAPI(title="otelgate OTLP/HTTP receiver", docs_url=None, redoc_url=None)
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
        """Decode, ingest and answer one export request."""
        kind = media_type(request)
        try:
            if kind is None:
                raise UnsupportedMediaTypeError(
                    f"unsupported Content-Type {request.headers.get('content-type')!r}; "
                    f"use {PROTOBUF} or {JSON}"
                )
            message, raw = await self._decode(signal, request, kind)
        except RefusedError as exc:  # refused before ingest: counted per request
            self.ingest.refuse(signal, exc.reason)
            return self._refusal(exc, kind or JSON)
        except ClientDisconnect:
            self.ingest.refuse(signal, "client_disconnect")
            return Response(status_code=400)
        try:
            response = await self.ingest.export(signal, message, raw)
        except RefusedError as exc:  # ingest counted it, with its items
            return self._refusal(exc, kind)
        return Response(_encode(response, kind), media_type=kind)

    async def _decode(
        self, signal: Signal, request: Request, kind: str
    ) -> tuple[ExportRequest, bytes | None]:
        """The decoded request, plus its protobuf bytes when they can be forwarded as-is."""
        body = await read_body(request, self.max_body_size)
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding == "gzip":
            body = gunzip(body, self.max_decompressed_size)
        elif encoding not in ("identity", ""):
            raise UnsupportedMediaTypeError(f"unsupported Content-Encoding {encoding!r}")
        if kind == PROTOBUF:
            return decode_protobuf(signal, body), body
        try:
            return decode_json(signal, body), None
        except ValueError as exc:
            raise BadRequestError(f"cannot decode OTLP/JSON {signal}: {exc}") from exc

    def _refusal(self, error: RefusedError, kind: str) -> Response:
        if error.http_status >= 500 and error.retry_after is None:
            log.error("refused export: %s", error)
        else:
            log.debug("refused export (%d): %s", error.http_status, error)
        return Response(
            _encode(refusal_status(error), kind),
            status_code=error.http_status,
            media_type=kind,
            headers=retry_after_header(error),
        )
