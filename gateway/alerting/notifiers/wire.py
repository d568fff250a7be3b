"""What the HTTP notifiers (webhook, Alertmanager) share: Go-style timestamps, and a JSON POST
whose answer is classified the way Alertmanager's own webhook notifier treats one.

A 2xx is done. 429 and 503 throttle and other 5xx are transient, each honouring a
``Retry-After`` header (seconds or an HTTP date). Any other answer (a 4xx, a redirect that is
not followed) is permanent and quotes the start of the body. Transport failures are
classified by :func:`exporters.http_post.post`; the whole request, connecting included, has
one deadline, so a shared client with other timeouts still obeys the configured one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime

import httpx
import orjson

from exporters.http_post import error_text, post
from gateway import __version__
from gateway.errors import (
    GatewayError,
    PermanentError,
    RetryableError,
    ThrottledError,
    parse_retry_after,
)
from gateway.redact import redact_url

USER_AGENT = f"otelgate/{__version__}"
# Go's zero time.Time as encoding/json writes it: Alertmanager's endsAt of a firing alert.
ZERO_TIME = "0001-01-01T00:00:00Z"
THROTTLING_STATUSES = frozenset({429, 503})


def rfc3339(seconds: float) -> str:
    """Wall-clock ``seconds`` as RFC 3339 in UTC, fraction without trailing zeros (as Go's
    ``time.RFC3339Nano``, to the microsecond): ``2024-05-01T12:00:00.25Z``."""
    moment = datetime.fromtimestamp(seconds, UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def answer_error(what: str, url: str, response: httpx.Response) -> GatewayError:
    """The error for a non-2xx answer to a notification POST."""
    status = response.status_code
    message = f"{what} {redact_url(url)}: HTTP {status}: {error_text(response)}"
    delay = parse_retry_after(response.headers.get("Retry-After"))
    if status in THROTTLING_STATUSES:
        return ThrottledError(message, delay)
    if status >= 500:
        return RetryableError(message, delay)
    return PermanentError(message)


class JsonPoster:
    """POSTs JSON documents to one URL with fixed headers and a deadline of ``timeout`` s.

    Uses ``client`` when given (and leaves it open), else a client of its own.
    """

    def __init__(
        self,
        what: str,
        url: str,
        headers: Mapping[str, str],
        timeout: float,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.what = what
        self.url = url
        self.timeout = timeout
        self.headers = httpx.Headers({"User-Agent": USER_AGENT})
        self.headers.update(headers)
        self.headers["Content-Type"] = "application/json"
        self._own_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(timeout=timeout)

    async def post(self, document: object) -> None:
        """Send ``document`` as JSON; return on a 2xx, else raise a classified error."""
        body = orjson.dumps(document)
        try:
            async with asyncio.timeout(self.timeout):
                response = await post(self._client, self.url, self.what, body, self.headers)
        except TimeoutError:
            raise RetryableError(
                f"{self.what} {redact_url(self.url)}: timed out after {self.timeout:g}s"
            ) from None
        if not 200 <= response.status_code < 300:
            raise answer_error(self.what, self.url, response)

    async def close(self) -> None:
        """Close the client if it is this poster's own."""
        if self._own_client:
            await self._client.aclose()
