"""Credentials out of everything the gateway prints: URLs, headers, messages and log lines.

An exporter endpoint may carry a password (``http://user:pass@host``) or a token in its query,
and headers carry API keys; none of it may reach a log line, ``/health`` or a configuration
error. :func:`redact_url` and :func:`redact_headers` are for values the gateway formats itself;
:func:`redact_text` finds the same things inside free text (an exception's message, a
configuration error, a third-party library's log line) and is what :class:`RedactingFormatter`
applies to every log record as the last line of defence.

Userinfo becomes ``user:***@`` (or ``***@`` when there is no password: the user part alone
may be a token); secret-looking query parameters, header values and ``Bearer``/``Basic``
credentials become ``***``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_SECRET_WORDS = (
    "auth", "token", "secret", "password", "passwd", "pwd", "apikey", "api_key", "api-key",
    "key", "credential", "cookie", "session", "signature", "jwt", "bearer",
)  # fmt: skip
_SECRET_NAME = re.compile("|".join(map(re.escape, _SECRET_WORDS)), re.IGNORECASE)
_STOP = r"\s'\"<>`,;)\]}"  # characters that end a query value inside free text
_INFO = r"[^\s/?#'\"<>`]+"  # userinfo, up to the authority's last "@" (raw "@" in passwords)

# scheme://user[:password]@
_URL_USERINFO = re.compile(rf"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<info>{_INFO})@")
# user:password@host without a scheme (a gRPC target, a scheme-less endpoint)
_BARE_USERINFO = re.compile(rf"(?<![\w/@:.%+-])(?P<user>[\w.%~+-]+):{_INFO}@(?=[\w\[])")
# ?token=...  &api_key=...  (any parameter whose name looks secret)
_QUERY_SECRET = re.compile(
    rf"(?P<name>[?&][^=&#{_STOP}]*?(?:{_SECRET_NAME.pattern})[^=&#{_STOP}]*)=(?P<value>[^&#{_STOP}]+)",
    re.IGNORECASE,
)
_SCHEME_CREDENTIAL = re.compile(r"\b(?P<scheme>Bearer|Basic|ApiKey)\s+[A-Za-z0-9._~+/=-]{8,}", re.I)


def is_secret_name(name: str) -> bool:
    """Whether a header, parameter or setting named ``name`` likely holds a credential."""
    return _SECRET_NAME.search(name) is not None


def _userinfo(info: str) -> str:
    user, sep, _ = info.partition(":")
    return f"{user}:{MASK}" if sep else MASK


def redact_url(url: str) -> str:
    """``url`` without its password (or token-like user) and secret query parameters."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if not parts.scheme or not parts.netloc:
        return redact_text(url)  # host:port targets, relative references
    netloc = parts.netloc
    if "@" in netloc:
        info, _, host = netloc.rpartition("@")
        netloc = f"{_userinfo(info)}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_secret_name(k) for k, _ in pairs):
            query = urlencode([(k, MASK if is_secret_name(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``headers`` with secret-looking values replaced by ``***``."""
    return {k: MASK if is_secret_name(k) else v for k, v in headers.items()}


def redact_text(text: str) -> str:
    """``text`` with every credential it contains in a URL or auth scheme masked."""
    if "@" in text:
        text = _URL_USERINFO.sub(lambda m: m["scheme"] + _userinfo(m["info"]) + "@", text)
        text = _BARE_USERINFO.sub(lambda m: f"{m['user']}:{MASK}@", text)
    if "=" in text:
        text = _QUERY_SECRET.sub(lambda m: f"{m['name']}={MASK}", text)
    return _SCHEME_CREDENTIAL.sub(lambda m: f"{m['scheme']} {MASK}", text)


class RedactingFormatter(logging.Formatter):
    """Wraps a formatter and redacts its output (message, arguments and traceback alike)."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(self.inner.format(record))
