"""Error classes, classified once where a third-party error is caught, and their wire mapping.

* :class:`PermanentError` — the data or the request is bad; never retried.
* :class:`RetryableError` — a transient failure (connection refused, 502/503/504, timeout).
* :class:`ThrottledError` — the other side asked us to slow down, optionally saying for how long.
* :class:`RefusedDataError` — a permanent error the backend blamed on some items of the request;
  the exporter queue splits the batch to deliver the others (:mod:`exporters.delivery`).

Receivers raise :class:`RefusedError` subclasses to tell a client what to do; the HTTP and gRPC
receivers map them with :func:`http_status` / :func:`grpc_code` so the mapping lives here only.
"""

from __future__ import annotations

import email.utils
import re
import time

import grpc


class GatewayError(Exception):
    """Base class of every error the gateway classifies."""


class PermanentError(GatewayError):
    """Retrying cannot help: bad data, rejected credentials, a 4xx from a backend."""


class RefusedDataError(PermanentError):
    """The backend refused data in the request, not the request itself (a 400, an invalid
    label, a body too large): sent alone, the other items would pass. ``parts`` is how many
    pieces to cut the batch into (two, or more when the request is several times too big)."""

    def __init__(self, message: str, parts: int = 2) -> None:
        super().__init__(message)
        self.parts = max(2, parts)


class RetryableError(GatewayError):
    """A transient failure; retry with backoff. ``retry_after`` (seconds) if the peer said."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ThrottledError(RetryableError):
    """The peer is overloaded (429, 503 with Retry-After, RESOURCE_EXHAUSTED with RetryInfo)."""


# --- what receivers answer to clients -------------------------------------------------------


class RefusedError(GatewayError):
    """The gateway refuses a request from a client; ``reason`` labels the refusal metric."""

    reason = "refused"
    http_status = 500
    grpc_code = grpc.StatusCode.INTERNAL
    retry_after: float | None = None


class BadRequestError(RefusedError):
    """Undecodable or invalid input (400 / INVALID_ARGUMENT)."""

    reason = "bad_request"
    http_status = 400
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class UnsupportedMediaTypeError(RefusedError):
    """A Content-Type other than OTLP protobuf or JSON (415)."""

    reason = "unsupported_media_type"
    http_status = 415
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class TooLargeError(RefusedError):
    """Body over the size limit, before or after decompression (413 / RESOURCE_EXHAUSTED
    without RetryInfo, which clients must not retry)."""

    reason = "too_large"
    http_status = 413
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class UnauthenticatedError(RefusedError):
    """No credential, or one the gateway does not know (401 / UNAUTHENTICATED)."""

    reason = "unauthenticated"
    http_status = 401
    grpc_code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDeniedError(RefusedError):
    """A known identity without the scope the request needs (403 / PERMISSION_DENIED)."""

    reason = "permission_denied"
    http_status = 403
    grpc_code = grpc.StatusCode.PERMISSION_DENIED


class RateLimitedError(RefusedError):
    """The identity's (or its tenant's) rate limit is used up: 429 + ``Retry-After`` from
    the bucket / RESOURCE_EXHAUSTED with ``RetryInfo``, which OTLP clients retry."""

    reason = "rate_limited"
    http_status = 429
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BackpressureError(RefusedError):
    """The gateway cannot take more now; the client should retry after ``retry_after`` s."""

    reason = "backpressure"
    http_status = 429
    grpc_code = grpc.StatusCode.UNAVAILABLE

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotReadyError(BackpressureError):
    """The gateway is starting or stopping (503 + Retry-After / UNAVAILABLE)."""

    reason = "not_ready"
    http_status = 503


class OverloadedError(BackpressureError):
    """The gateway sheds load: too many request bytes in flight, or an event loop too far
    behind (503 + Retry-After / UNAVAILABLE with RetryInfo)."""

    reason = "overloaded"
    http_status = 503


class MemoryLimitError(OverloadedError):
    """Taking the request would put the in-flight request bytes over their budget."""

    reason = "memory_limit"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from an HTTP ``Retry-After`` header (delta-seconds or an HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


RETRYABLE_HTTP_STATUSES = frozenset({429, 502, 503, 504})
# A 400 or 413 is about the request's content: smaller requests without the culprit may pass.
DATA_HTTP_STATUSES = frozenset({400, 413})
# gRPC's own answer to a message over the server's receive limit.
_TOO_LARGE_GRPC = "larger than max"
RETRYABLE_GRPC_CODES = frozenset(
    {
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


def classify_http_status(status: int, message: str, retry_after: str | None) -> GatewayError:
    """The error for a non-2xx answer of an OTLP/HTTP (or similar) backend."""
    delay = parse_retry_after(retry_after)
    if status in (429, 503):
        return ThrottledError(f"HTTP {status}: {message}", delay)
    if status in RETRYABLE_HTTP_STATUSES:
        return RetryableError(f"HTTP {status}: {message}", delay)
    if status in DATA_HTTP_STATUSES:
        return RefusedDataError(f"HTTP {status}: {message}")
    return PermanentError(f"HTTP {status}: {message}")


def classify_push_status(
    status: int, text: str, retry_after: str | None, data_errors: re.Pattern[str], what: str = ""
) -> GatewayError:
    """The error for a non-2xx answer of a push API (Loki, remote write): a 400 or 413, or a
    500 whose ``text`` matches ``data_errors``, blames the data; 429 and 503 throttle; other
    5xx are transient; other 4xx are final. ``what`` prefixes the message (``Loki``)."""
    delay = parse_retry_after(retry_after)
    message = f"{what} HTTP {status}: {text}".lstrip()
    if status in DATA_HTTP_STATUSES or (status == 500 and data_errors.search(text)):
        return RefusedDataError(message)
    if status in (429, 503):
        return ThrottledError(message, delay)
    if status >= 500:
        return RetryableError(message, delay)
    return PermanentError(message)


def classify_grpc_status(
    code: grpc.StatusCode, message: str, retry_delay: float | None
) -> GatewayError:
    """The error for a failed gRPC export. RESOURCE_EXHAUSTED is retryable only with RetryInfo."""
    if code is grpc.StatusCode.INVALID_ARGUMENT or (
        code is grpc.StatusCode.RESOURCE_EXHAUSTED and _TOO_LARGE_GRPC in message
    ):
        return RefusedDataError(f"gRPC {code.name}: {message}")
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        if retry_delay is not None:
            return ThrottledError(f"gRPC {code.name}: {message}", retry_delay)
        return PermanentError(f"gRPC {code.name}: {message}")
    if code in RETRYABLE_GRPC_CODES:
        return RetryableError(f"gRPC {code.name}: {message}", retry_delay)
    return PermanentError(f"gRPC {code.name}: {message}")


class NoPipelineError(RefusedError):
    """No pipeline of this signal uses the receiver (404 / UNIMPLEMENTED); not retryable."""

    reason = "no_pipeline"
    http_status = 404
    grpc_code = grpc.StatusCode.UNIMPLEMENTED
