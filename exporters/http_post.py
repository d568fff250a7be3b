"""The HTTP POST every HTTP exporter makes, with transport failures already classified.

A URL httpx cannot use (wrong scheme) is permanent; a timeout or a connection that failed is
retryable. Status codes are left to the caller: each backend (OTLP, Loki, remote write) has
its own rules for which answers are worth retrying. Errors show URLs without credentials
(:func:`gateway.redact.redact_url`).

Redirects: a 307 or 308 to the same scheme, host and port is followed once, with the same
body, headers and credentials (these codes keep the method and body). Any other redirect (a
301/302/303, which would turn the POST into a GET; one to another host, scheme or port, where
the exporter's headers and credentials must not go; a second redirect) is a permanent error
naming where the backend pointed, so the endpoint can be configured as the final URL.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Protocol

import httpx

from gateway.errors import PermanentError, RetryableError
from gateway.redact import redact_url

MAX_ERROR_TEXT = 512  # bytes of an error body quoted in logs and errors
FOLLOWED = (307, 308)


async def post(
    client: httpx.AsyncClient, url: str, what: str, body: bytes, headers: Mapping[str, str]
) -> httpx.Response:
    """POST ``body`` to ``url``; errors name ``what`` (e.g. ``Loki``) and the URL."""
    response = await _post(client, url, what, body, headers)
    if not response.has_redirect_location:
        return response
    target = response.url.join(response.headers["Location"])
    if response.status_code in FOLLOWED and _same_origin(response.url, target):
        if response.url.userinfo and not target.userinfo:  # same origin: same credentials
            target = target.copy_with(userinfo=response.url.userinfo)
        await response.aclose()
        response = await _post(client, str(target), what, body, headers)
        if not response.has_redirect_location:
            return response
        raise _redirect_error(what, url, response, "a second redirect is not followed")
    reason = (
        "redirects to another scheme, host or port are not followed"
        if response.status_code in FOLLOWED
        else "only a 307/308 to the same host is followed"
    )
    raise _redirect_error(what, url, response, reason)


async def _post(
    client: httpx.AsyncClient, url: str, what: str, body: bytes, headers: Mapping[str, str]
) -> httpx.Response:
    shown = redact_url(url)
    try:
        return await client.post(url, content=body, headers=headers, follow_redirects=False)
    except httpx.UnsupportedProtocol as exc:
        raise PermanentError(f"{what} {shown}: {exc}") from exc
    except httpx.TimeoutException as exc:
        limit = client.timeout.read
        after = f" after {limit:g}s" if limit is not None else ""
        raise RetryableError(f"{what} {shown}: timed out{after}") from exc
    except httpx.TransportError as exc:
        raise RetryableError(f"{what} {shown}: {type(exc).__name__}: {exc}") from exc


class ClientTls(Protocol):
    """The TLS settings of an HTTP destination (an exporter's ``tls`` block)."""

    @property
    def ca_file(self) -> str | None: ...
    @property
    def cert_file(self) -> str | None: ...
    @property
    def key_file(self) -> str | None: ...
    @property
    def insecure_skip_verify(self) -> bool: ...


def ssl_verify(tls: ClientTls | None) -> ssl.SSLContext | bool:
    """httpx's ``verify`` for ``tls``: the system trust store unless a CA file, a client
    certificate (mTLS) or skipping verification asks for an SSLContext of its own."""
    if tls is None or not (tls.ca_file or tls.cert_file or tls.insecure_skip_verify):
        return True
    context = ssl.create_default_context(cafile=tls.ca_file)
    if tls.cert_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


def _redirect_error(what: str, url: str, response: httpx.Response, reason: str) -> PermanentError:
    location = redact_url(str(response.url.join(response.headers["Location"])))
    return PermanentError(
        f"{what} {redact_url(url)}: HTTP {response.status_code} redirect to {location}; "
        f"{reason}: configure the final URL as the endpoint"
    )


def error_text(response: httpx.Response) -> str:
    """The start of an error answer's body as text, else its reason phrase."""
    text = response.content[:MAX_ERROR_TEXT].decode("utf-8", "replace").strip()
    return text or response.reason_phrase or "no message"
