"""Pure ASGI request/response logging middleware with request ids and masking.

Pure ASGI (not ``BaseHTTPMiddleware``) so the server span and context variables set by
the OpenTelemetry ASGI instrumentation stay active inside the app and inside this code.
"""

from __future__ import annotations

import logging
import os
import re
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from instrumentation.logs import correlation_id_var
from instrumentation.masking import (
    DEFAULT_MASKING,
    MaskingConfig,
    mask_body,
    mask_headers,
    mask_query_string,
    mask_text,
    mask_value,
)
from instrumentation.uvicorn_logs import keep_access_log_requested, request_logging_started

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_internal = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
REQUEST_ID_ATTRIBUTE = "http.request.id"
LOG_BODIES_ENV = "OTELGATE_LOG_BODIES"
MAX_BODY_BYTES_ENV = "OTELGATE_LOG_BODY_MAX_BYTES"
DEFAULT_MAX_BODY_BYTES = 4096
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:+/=-]{1,128}$")
# Instrumentations whose server span gets escaping exceptions recorded without us: the
# FastAPI instrumentation wraps user middleware in its own exception recorder. (The plain
# ASGI one does not: it ends the span when the 500 is sent, before the exception escapes.)
SELF_RECORDING_SCOPES = frozenset({"opentelemetry.instrumentation.fastapi"})


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _env_int(name: str, default: int) -> int:
    try:
        return max(0, int(os.environ.get(name, "")))
    except ValueError:
        return default


def new_request_id() -> str:
    """A fresh request id (uuid4, 32 lower-hex characters)."""
    return uuid.uuid4().hex


class _BodyCapture:
    """Counts body bytes and keeps at most ``limit`` of them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.chunks: list[bytes] = []
        self.kept = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        room = self.limit - self.kept
        if room > 0 and chunk:
            piece = chunk[:room]
            self.chunks.append(piece)
            self.kept += len(piece)

    @property
    def truncated(self) -> bool:
        return self.size > self.kept

    def data(self) -> bytes:
        return b"".join(self.chunks)


class RequestLoggingMiddleware:
    """Logs one structured record per HTTP request and propagates ``X-Request-ID``.

    The record carries method, route, path, status, duration_ms, request_size,
    response_size, client, request_id and (masked) headers; with ``log_bodies`` also the
    masked, size-capped bodies. The request id comes from the request (when well-formed)
    or is generated, is returned on the response, set as the correlation id and put on
    the current span. Unhandled exceptions are recorded on the span, logged at ERROR
    with the stack trace, and re-raised. ``record_exceptions=None`` (auto) skips the span
    event when the span's own instrumentation (FastAPI's) records it anyway.

    Under ``opentelemetry-instrument``, building it turns uvicorn's access log off (each
    request would be logged twice); ``uvicorn_access_log=True`` (default: the
    ``OTELGATE_UVICORN_ACCESS_LOG`` env flag) keeps it.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        logger: logging.Logger | str = "otelgate.http",
        masking: MaskingConfig | None = None,
        log_headers: bool = True,
        log_bodies: bool | None = None,
        max_body_bytes: int | None = None,
        request_id_header: str = REQUEST_ID_HEADER,
        exclude_paths: Collection[str] = (),
        record_exceptions: bool | None = None,
        uvicorn_access_log: bool | None = None,
    ) -> None:
        self.app = app
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.masking = masking or DEFAULT_MASKING
        self.log_headers = log_headers
        self.log_bodies = env_flag(LOG_BODIES_ENV) if log_bodies is None else log_bodies
        self.max_body_bytes = (
            _env_int(MAX_BODY_BYTES_ENV, DEFAULT_MAX_BODY_BYTES)
            if max_body_bytes is None
            else max_body_bytes
        )
        self.request_id_header = request_id_header.lower()
        self._request_id_bytes = self.request_id_header.encode("latin-1")
        self.exclude_paths = frozenset(exclude_paths)
        self.record_exceptions = record_exceptions
        keep = keep_access_log_requested() if uvicorn_access_log is None else uvicorn_access_log
        request_logging_started(keep_access_log=keep)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = self._request_id(scope)
        token = correlation_id_var.set(request_id)
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute(REQUEST_ID_ATTRIBUTE, request_id)
        limit = self.max_body_bytes if self.log_bodies else 0
        request_body = _BodyCapture(limit)
        response_body = _BodyCapture(limit)
        response: dict[str, Any] = {"status": None, "headers": []}

        async def receive_wrapper() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                request_body.add(message.get("body", b""))
            return message

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() != self._request_id_bytes
                ]
                headers.append((self._request_id_bytes, request_id.encode("latin-1")))
                message = {**message, "headers": headers}
                response["status"] = message["status"]
                response["headers"] = headers
            elif message["type"] == "http.response.body":
                response_body.add(message.get("body", b""))
            await send(message)

        error: BaseException | None = None
        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except Exception as exc:
            error = exc
            self._record_on_span(span, exc)
            raise
        finally:
            try:
                if scope.get("path") not in self.exclude_paths or error is not None:
                    fields = self._fields(
                        scope, request_id, response, request_body, response_body, start
                    )
                    self._log(fields, error)
            except Exception:  # logging must never replace the app's outcome
                _internal.exception("request logging failed")
            finally:
                correlation_id_var.reset(token)

    def _request_id(self, scope: Scope) -> str:
        for name, value in scope.get("headers", []):
            if name.lower() == self._request_id_bytes:
                candidate = value.decode("latin-1").strip()
                # Well-formed and carrying nothing maskable (e.g. a card number), else replaced.
                if (
                    _VALID_REQUEST_ID.match(candidate)
                    and mask_value(candidate, self.masking) == candidate
                ):
                    return candidate
                break
        return new_request_id()

    def _record_on_span(self, span: trace.Span, exc: Exception) -> None:
        if not span.is_recording():
            return
        record = self.record_exceptions
        if record is None:
            scope = getattr(span, "instrumentation_scope", None)
            record = getattr(scope, "name", None) not in SELF_RECORDING_SCOPES
        if not record:
            return
        message = mask_text(str(exc), self.masking)
        stacktrace = mask_text("".join(traceback.format_exception(exc)), self.masking)
        span.record_exception(
            exc,
            attributes={"exception.message": message, "exception.stacktrace": stacktrace},
            escaped=True,
        )
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {message}"))

    def _fields(
        self,
        scope: Scope,
        request_id: str,
        response: dict[str, Any],
        request_body: _BodyCapture,
        response_body: _BodyCapture,
        start: float,
    ) -> dict[str, Any]:
        path = mask_value(str(scope.get("path", "")), self.masking)
        route = getattr(scope.get("route"), "path", None)
        client = scope.get("client")
        fields: dict[str, Any] = {
            "method": scope.get("method", ""),
            "route": route if isinstance(route, str) else path,
            "path": path,
            "status": response["status"],
            "duration_ms": round((time.perf_counter() - start) * 1000.0, 3),
            "request_size": request_body.size,
            "response_size": response_body.size,
            "client": f"{client[0]}:{client[1]}" if client else None,
            "request_id": request_id,
        }
        query = scope.get("query_string", b"")
        if query:
            fields["query"] = mask_query_string(query.decode("latin-1"), self.masking)
        if self.log_headers:
            fields["request_headers"] = mask_headers(scope.get("headers", []), self.masking)
            fields["response_headers"] = mask_headers(response["headers"], self.masking)
        if self.log_bodies:
            req_type = _header(scope.get("headers", []), b"content-type")
            resp_type = _header(response["headers"], b"content-type")
            fields["request_body"] = mask_body(
                request_body.data(), req_type, self.masking, truncated=request_body.truncated
            )
            fields["response_body"] = mask_body(
                response_body.data(), resp_type, self.masking, truncated=response_body.truncated
            )
            fields["request_body_truncated"] = request_body.truncated
            fields["response_body_truncated"] = response_body.truncated
        return fields

    def _log(self, fields: dict[str, Any], error: BaseException | None) -> None:
        if error is not None and fields["status"] is None:
            fields["status"] = 500
        status = fields["status"] or 0
        if error is not None or status >= 500:
            level = logging.ERROR
        elif status >= 400:
            level = logging.WARNING
        else:
            level = logging.INFO
        if error is not None:
            msg = f"unhandled {type(error).__name__} in %s %s -> %s (%.1fms)"
        else:
            msg = "%s %s -> %s (%.1fms)"
        args = (fields["method"], fields["route"], fields["status"], fields["duration_ms"])
        self.logger.log(level, msg, *args, exc_info=error, extra=fields)


def _header(headers: Collection[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None
