"""Snappy request bodies, block or framed, with a hard cap on the output.

``Content-Encoding: snappy`` means two things in practice. The Collector's ``confighttp`` sent
the *framing* format under that name until its ``confighttp.framedSnappy`` gate (beta since
v0.125) made ``snappy`` the *block* format and ``x-snappy-framed`` the framing format; its
server tells the two apart by the stream identifier a framed body starts with. This module
does the same. Prometheus remote write uses the block format.

Nothing is decompressed before the sizes are known to fit: a block starts with its
uncompressed length (a varint), checked against the limit and against the most a block of
that size can expand to; a framed stream is walked chunk by chunk first (each chunk holds at
most 64 KiB once uncompressed), and only then decoded, CRCs checked, by ``cramjam``.
"""

from __future__ import annotations

import cramjam

from gateway.errors import BadRequestError, TooLargeError

FRAMED_MAGIC = b"\xff\x06\x00\x00sNaPpY"
MAX_CHUNK_OUTPUT = 65536  # the framing format's bound on one chunk's uncompressed data
# A snappy element of n bytes yields at most 64 bytes per 3 (a 2-byte-offset copy): no valid
# block expands more than this, so a block declaring more is refused without decoding.
MAX_EXPANSION = 22
_COMPRESSED, _UNCOMPRESSED, _IDENTIFIER = 0x00, 0x01, 0xFF


def is_framed(body: bytes) -> bool:
    """Whether ``body`` starts with the framing format's stream identifier."""
    return body.startswith(FRAMED_MAGIC)


def _too_large(limit: int) -> TooLargeError:
    return TooLargeError(f"decompressed body exceeds the limit of {limit} bytes")


def _block_length(block: bytes | memoryview) -> int:
    try:
        return int(cramjam.snappy.decompress_raw_len(block))
    except cramjam.DecompressionError as exc:
        raise BadRequestError(f"invalid snappy body: {exc}") from exc


def unsnappy_block(body: bytes, limit: int) -> bytes:
    """Decode one snappy block; 413 if its declared length passes ``limit``, 400 if bad."""
    declared = _block_length(body)
    if declared > limit:
        raise _too_large(limit)
    if declared > MAX_EXPANSION * len(body):
        raise BadRequestError(
            f"invalid snappy body: {len(body)} bytes cannot hold {declared} bytes of data"
        )
    try:
        out = bytes(cramjam.snappy.decompress_raw(body))
    except cramjam.DecompressionError as exc:
        raise BadRequestError(f"invalid snappy body: {exc}") from exc
    if len(out) != declared:
        raise BadRequestError("invalid snappy body: length does not match its header")
    return out


def framed_size(body: bytes) -> int:
    """The uncompressed size of a framed stream, from its chunk headers (400 if malformed)."""
    view = memoryview(body)
    total, pos = 0, 0
    if not is_framed(body):
        raise BadRequestError("invalid snappy framed body: no stream identifier")
    while pos < len(body):
        if pos + 4 > len(body):
            raise BadRequestError("invalid snappy framed body: truncated chunk header")
        kind = body[pos]
        length = int.from_bytes(body[pos + 1 : pos + 4], "little")
        data = view[pos + 4 : pos + 4 + length]
        if len(data) < length:
            raise BadRequestError("invalid snappy framed body: truncated chunk")
        if kind == _COMPRESSED:
            if length < 5:
                raise BadRequestError("invalid snappy framed body: empty compressed chunk")
            size = _block_length(data[4:])
        elif kind == _UNCOMPRESSED:
            size = length - 4
            if size < 0:
                raise BadRequestError("invalid snappy framed body: short uncompressed chunk")
        elif kind == _IDENTIFIER or kind >= 0x80:  # identifier again, padding, skippable
            size = 0
        else:
            raise BadRequestError(f"invalid snappy framed body: reserved chunk type {kind:#x}")
        if size > MAX_CHUNK_OUTPUT:
            raise BadRequestError("invalid snappy framed body: chunk over 64 KiB")
        total += size
        pos += 4 + length
    return total


def unsnappy_framed(body: bytes, limit: int) -> bytes:
    """Decode a framed stream (all of it, CRCs checked); 413 past ``limit``, 400 if bad."""
    size = framed_size(body)
    if size > limit:
        raise _too_large(limit)
    try:
        out = bytes(cramjam.snappy.decompress(body, output_len=size))
    except cramjam.DecompressionError as exc:
        raise BadRequestError(f"invalid snappy framed body: {exc}") from exc
    if len(out) != size:
        raise BadRequestError("invalid snappy framed body: length does not match its chunks")
    return out


def unsnappy(body: bytes, limit: int) -> bytes:
    """``Content-Encoding: snappy``: framed if it starts like a framed stream, else a block."""
    if is_framed(body):
        return unsnappy_framed(body, limit)
    return unsnappy_block(body, limit)
