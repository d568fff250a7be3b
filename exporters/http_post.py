"""The HTTP POST every HTTP exporter makes, with transport failures already classified.

A URL httpx cannot use (wrong scheme) is permanent; a timeout or a connection that failed is
retryable. Status codes are left to the caller: each backend (OTLP, Loki, remote write) has
its own rules for which answers are worth retrying. Errors show URLs without credentials
(:func:`gateway.redact.redact_url`).
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from gateway.errors import PermanentError, RetryableError
from gateway.redact import redact_url

MAX_ERROR_TEXT = 512  # bytes of an error body quoted in logs and errors


async def post(
    client: httpx.AsyncClient, url: str, what: str, body: bytes, headers: Mapping[str, str]
) -> httpx.Response:
    """POST ``body`` to ``url``; errors name ``what`` (e.g. ``Loki``) and the URL."""
    shown = redact_url(url)
    try:
        return await client.post(url, content=body, headers=headers)
    except httpx.UnsupportedProtocol as exc:
        raise PermanentError(f"{what} {shown}: {exc}") from exc
    except httpx.TimeoutException as exc:
        limit = client.timeout.read
        after = f" after {limit:g}s" if limit is not None else ""
        raise RetryableError(f"{what} {shown}: timed out{after}") from exc
    except httpx.TransportError as exc:
        raise RetryableError(f"{what} {shown}: {type(exc).__name__}: {exc}") from exc


def error_text(response: httpx.Response) -> str:
    """The start of an error answer's body as text, else its reason phrase."""
    text = response.content[:MAX_ERROR_TEXT].decode("utf-8", "replace").strip()
    return text or response.reason_phrase or "no message"
