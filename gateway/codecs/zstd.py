"""zstd request bodies, every frame, with a hard cap on the output.

A frame may declare any content size and any window: neither is trusted. A declared size
over the limit is refused at once (413); otherwise the body is decoded as a stream, in reads
of ``READ`` bytes, stopping as soon as the output passes the limit, with the decoder's window
capped at ``max(limit, 8 MiB)`` (8 MiB is the window of ``zstd -19`` and of Go's
``klauspost/compress`` writer the Collector uses).

``zstandard``'s stream reader ends quietly at the end of a truncated frame, so the frame and
block headers are walked first (``MAX_FRAMES`` frames, ``MAX_BLOCKS`` blocks at most, which no
real compressor comes near): a cut or malformed body is 400 before any decoding, and the
sizes that RLE and raw blocks state are added up, so most bombs are 413 before decoding too.
"""

from __future__ import annotations

import io

import zstandard

from gateway.errors import BadRequestError, TooLargeError

READ = 256 * 1024
MIN_WINDOW = 8 << 20
MAX_FRAMES = 1024
MAX_BLOCKS = 65536
MAX_BLOCK = 128 * 1024  # the format's largest block
_MAGIC = b"\x28\xb5\x2f\xfd"
_SKIPPABLE = 0x184D2A50  # magic numbers 0x184D2A50..0x184D2A5F
_RAW, _RLE, _COMPRESSED = 0, 1, 2


def _bad(problem: str) -> BadRequestError:
    return BadRequestError(f"invalid zstd body: {problem}")


def _too_large(limit: int) -> TooLargeError:
    return TooLargeError(f"decompressed body exceeds the limit of {limit} bytes")


def _frame_end(body: bytes, pos: int, window: int) -> tuple[int, int, int]:
    """(end, blocks, known) of the frame at ``pos``: where it ends, its block count, and the
    output its raw and RLE blocks state."""
    view = memoryview(body)[pos:]
    try:
        header = zstandard.frame_header_size(view)
        params = zstandard.get_frame_parameters(view)
    except zstandard.ZstdError as exc:
        raise _bad(str(exc)) from exc
    if params.window_size > window:
        raise _bad(f"a frame's window of {params.window_size} bytes is over the {window} allowed")
    has_checksum = params.has_checksum
    at, blocks, known, last = pos + header, 0, 0, False
    while not last:
        if at + 3 > len(body):
            raise _bad("truncated")
        word = int.from_bytes(body[at : at + 3], "little")
        last, kind, size = bool(word & 1), (word >> 1) & 3, word >> 3
        if kind > _COMPRESSED or size > MAX_BLOCK:
            raise _bad("corrupted block header")
        at += 3 + (1 if kind == _RLE else size)
        known += size if kind in (_RAW, _RLE) else 0
        blocks += 1
    at += 4 if has_checksum else 0
    if at > len(body):
        raise _bad("truncated")
    return at, blocks, known


def window_limit(limit: int) -> int:
    """The largest window a frame may ask for under a decompressed-size ``limit``."""
    return max(limit, MIN_WINDOW)


def check_frames(body: bytes, limit: int) -> None:
    """Walk every frame header and block header of ``body``: 400 if cut, malformed or over
    the frame or block caps, 413 if the stated sizes already pass ``limit``."""
    pos, frames, blocks, known = 0, 0, 0, 0
    if not body:
        raise _bad("empty")
    while pos < len(body):
        frames += 1
        if frames > MAX_FRAMES:
            raise BadRequestError(f"zstd body has more than {MAX_FRAMES} frames")
        magic = int.from_bytes(body[pos : pos + 4], "little")
        if magic & 0xFFFFFFF0 == _SKIPPABLE and pos + 8 <= len(body):
            pos += 8 + int.from_bytes(body[pos + 4 : pos + 8], "little")
            if pos > len(body):
                raise _bad("truncated")
            continue
        if body[pos : pos + 4] != _MAGIC:
            raise _bad("unknown frame magic")
        try:
            declared = zstandard.frame_content_size(memoryview(body)[pos:])
        except zstandard.ZstdError as exc:
            raise _bad(str(exc)) from exc
        if declared > limit:  # -1 when the frame does not say
            raise _too_large(limit)
        pos, frame_blocks, frame_known = _frame_end(body, pos, window_limit(limit))
        blocks += frame_blocks
        known += frame_known
        if blocks > MAX_BLOCKS:
            raise BadRequestError(f"zstd body has more than {MAX_BLOCKS} blocks")
        if known > limit:
            raise _too_large(limit)


def unzstd(body: bytes, limit: int) -> bytes:
    """Decode every zstd frame of ``body``; 413 past ``limit`` bytes, 400 if malformed."""
    check_frames(body, limit)
    decoder = zstandard.ZstdDecompressor(max_window_size=window_limit(limit))
    reader = decoder.stream_reader(body, read_across_frames=True)
    out = io.BytesIO()
    size = 0
    try:
        while chunk := reader.read(min(READ, limit - size + 1)):
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            out.write(chunk)
    except zstandard.ZstdError as exc:
        raise _bad(str(exc)) from exc
    return out.getvalue()
