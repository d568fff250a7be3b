"""Request body decompression with a hard cap on the output.

Accepted ``Content-Encoding`` values (what the Collector's ``confighttp`` and the OTLP SDKs
send): ``gzip``, ``zstd``, ``snappy`` and ``x-snappy-framed`` (:mod:`gateway.codecs.snappy`),
``deflate`` and ``zlib``, ``identity``.

- ``gzip`` bodies may hold several members one after another (RFC 1952 section 2.2; Go's
  reader and ``gzip -d`` read them all): every member is inflated, up to ``MAX_GZIP_MEMBERS``
  so that a body of many tiny members cannot cost a decompressor set-up per few bytes.
- ``deflate`` is the zlib format (RFC 9110 section 8.4.1.2; Go's ``compress/zlib`` in the
  Collector, ``zlib.compress`` in the Python exporters); a raw deflate stream, which some
  HTTP clients send under that name, is accepted too. ``zlib`` is the Collector's alias.
- ``zstd`` bodies may hold several frames (:mod:`gateway.codecs.zstd`).

The output is capped as it is produced, so a bomb is refused (413) after at most ``limit``
bytes of work; malformed bodies are 400, unknown encodings 415.
"""

from __future__ import annotations

import zlib

from gateway.codecs.snappy import unsnappy, unsnappy_framed
from gateway.codecs.zstd import unzstd
from gateway.errors import BadRequestError, TooLargeError, UnsupportedMediaTypeError

MAX_GZIP_MEMBERS = 1024
SUPPORTED = ("gzip", "zstd", "snappy", "x-snappy-framed", "deflate", "zlib", "identity")


def _too_large(limit: int) -> TooLargeError:
    return TooLargeError(f"decompressed body exceeds the limit of {limit} bytes")


def _inflate(body: bytes, limit: int, wbits: int, name: str, max_members: int) -> bytes:
    """Inflate up to ``max_members`` zlib-family streams; 413 past ``limit``, 400 if bad."""
    out: list[bytes] = []
    size = 0
    data = body
    for _ in range(max_members):
        inflater = zlib.decompressobj(wbits=wbits)
        try:
            chunk = inflater.decompress(data, limit - size + 1)
        except zlib.error as exc:
            raise BadRequestError(f"invalid {name} body: {exc}") from exc
        size += len(chunk)
        if size > limit or inflater.unconsumed_tail:
            raise _too_large(limit)
        if not inflater.eof:
            raise BadRequestError(f"invalid {name} body: truncated")
        out.append(chunk)
        data = inflater.unused_data
        if not data:
            return b"".join(out)
    if max_members == 1:
        raise BadRequestError(f"invalid {name} body: data after the end of the stream")
    raise BadRequestError(f"{name} body has more than {max_members} members")


def gunzip(body: bytes, limit: int) -> bytes:
    """Inflate every gzip member of ``body``; 413 past ``limit`` bytes, 400 if malformed."""
    return _inflate(body, limit, 16 + zlib.MAX_WBITS, "gzip", MAX_GZIP_MEMBERS)


def _zlib_header(body: bytes) -> bool:
    """Whether ``body`` starts with a zlib header (RFC 1950: deflate, check bits valid)."""
    return len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0


def inflate(body: bytes, limit: int) -> bytes:
    """``deflate``: a zlib stream, or a raw deflate stream; 413 past ``limit``, 400 if bad."""
    if not _zlib_header(body):
        return _inflate(body, limit, -zlib.MAX_WBITS, "deflate", 1)
    try:
        return _inflate(body, limit, zlib.MAX_WBITS, "deflate", 1)
    except BadRequestError as wrapped:
        try:  # a raw stream may start like a zlib header
            return _inflate(body, limit, -zlib.MAX_WBITS, "deflate", 1)
        except BadRequestError:
            raise wrapped from None


def decompress(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """``body`` decoded from ``content_encoding`` (absent or ``identity``: as it is)."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("identity", ""):
        return body
    if encoding == "gzip":
        return gunzip(body, limit)
    if encoding == "zstd":
        return unzstd(body, limit)
    if encoding == "snappy":
        return unsnappy(body, limit)
    if encoding == "x-snappy-framed":
        return unsnappy_framed(body, limit)
    if encoding in ("deflate", "zlib"):
        return inflate(body, limit)
    raise UnsupportedMediaTypeError(
        f"unsupported Content-Encoding {encoding!r}; use one of {', '.join(SUPPORTED)}"
    )
