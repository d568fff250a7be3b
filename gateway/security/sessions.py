"""Browser sessions for the dashboard: the token in an HttpOnly cookie, a CSRF token, and the
same-origin rule for state changes.

A browser that logged in sends its token as the ``otelgate_session`` cookie; the admin access
control treats it like a bearer token. Because a browser attaches cookies to requests other
sites make, a state change authenticated by the cookie also needs the ``X-CSRF-Token`` header:
an HMAC of the token under a key made when the process starts, printed into each page (so a
restart invalidates it, and reloading the page fixes that). Independently of any credential, a
browser's state change coming from another origin (``Sec-Fetch-Site``, else ``Origin``) is
refused, which also protects a gateway running without authentication on 127.0.0.1.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.requests import cookie_parser

SESSION_COOKIE = "otelgate_session"
CSRF_HEADER = b"x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Sessions:
    """Reads the session cookie and makes and checks CSRF tokens."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key if key is not None else secrets.token_bytes(32)

    @staticmethod
    def encode(token: str) -> str:
        """The cookie value of a token (base64url: any token survives the cookie syntax)."""
        return base64.urlsafe_b64encode(token.encode()).decode("ascii")

    def csrf_token(self, token: str) -> str:
        """The CSRF token that goes with a session ``token``."""
        return hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()

    def csrf_valid(self, headers: Mapping[bytes, bytes], token: str) -> bool:
        """Whether the request's ``X-CSRF-Token`` header matches ``token``'s."""
        sent = headers.get(CSRF_HEADER, b"")  # bytes: any header value compares, none raises
        return hmac.compare_digest(sent, self.csrf_token(token).encode())


def session_token(headers: Mapping[bytes, bytes]) -> str | None:
    """The session cookie's token, or None."""
    raw = headers.get(b"cookie")
    if not raw:
        return None
    # Lenient parsing: another application's malformed cookie on the same host (browsers do
    # not separate cookies by port) must not hide ours.
    value = cookie_parser(raw.decode("latin-1")).get(SESSION_COOKIE)
    if not value:
        return None
    try:  # base64url, so any token survives the cookie syntax
        token = base64.b64decode(value.encode("ascii"), altchars=b"-_", validate=True)
        return token.decode() or None
    except (binascii.Error, UnicodeError, ValueError):
        return None


def cross_origin(headers: Mapping[bytes, bytes]) -> bool:
    """Whether a browser sent this request from a page of another origin."""
    site = headers.get(b"sec-fetch-site")
    if site is not None:
        return site not in (b"same-origin", b"none")
    origin = headers.get(b"origin")
    if origin is None or origin == b"null":
        return origin == b"null"
    host = headers.get(b"host", b"").decode("latin-1").lower()
    return urlsplit(origin.decode("latin-1")).netloc.lower() != host


def session_cookie(token: str, *, max_age: int, secure: bool) -> str:
    """The ``Set-Cookie`` value that starts a session."""
    value = Sessions.encode(token)
    # Lax: a link to a page from a chat or a mail arrives logged in; state changes are
    # guarded by the CSRF token and the same-origin rule, not by the cookie's site policy.
    flags = f"; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax"
    return f"{SESSION_COOKIE}={value}{flags}{'; Secure' if secure else ''}"


def cleared_cookie(*, secure: bool) -> str:
    """The ``Set-Cookie`` value that ends a session."""
    return session_cookie("", max_age=0, secure=secure)
