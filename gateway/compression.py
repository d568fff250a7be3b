"""Request body decompression with a hard cap on the output.

``Content-Encoding: gzip`` bodies may hold several gzip members one after another (RFC 1952
section 2.2; Go's reader and ``gzip -d`` read them all): every member is inflated, so nothing
after the first is lost. The output is capped as it is produced, so a bomb is refused (413)
after at most ``limit`` bytes of work, and the number of members is capped so that a body of
many tiny members cannot cost a decompressor set-up per few bytes.
"""

from __future__ import annotations

import zlib

from gateway.errors import BadRequestError, TooLargeError, UnsupportedMediaTypeError

MAX_GZIP_MEMBERS = 1024
SUPPORTED = ("gzip", "identity")


def gunzip(body: bytes, limit: int) -> bytes:
    """Inflate every gzip member of ``body``; 413 past ``limit`` bytes, 400 if malformed."""
    out: list[bytes] = []
    size = 0
    data = body
    for _ in range(MAX_GZIP_MEMBERS):
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            chunk = inflater.decompress(data, limit - size + 1)
        except zlib.error as exc:
            raise BadRequestError(f"invalid gzip body: {exc}") from exc
        size += len(chunk)
        if size > limit or inflater.unconsumed_tail:
            raise TooLargeError(f"decompressed body exceeds the limit of {limit} bytes")
        if not inflater.eof:
            raise BadRequestError("invalid gzip body: truncated")
        out.append(chunk)
        data = inflater.unused_data
        if not data:
            return b"".join(out)
    raise BadRequestError(f"gzip body has more than {MAX_GZIP_MEMBERS} members")


def decompress(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """``body`` decoded from ``content_encoding`` (absent or ``identity``: as it is)."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("identity", ""):
        return body
    if encoding == "gzip":
        return gunzip(body, limit)
    raise UnsupportedMediaTypeError(
        f"unsupported Content-Encoding {encoding!r}; use one of {', '.join(SUPPORTED)}"
    )
