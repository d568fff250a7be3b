"""zstd, snappy (block and framed) and deflate bodies: the same cap as gzip, bombs refused
cheaply, junk and cut bodies refused clearly (issue 10, finding 10)."""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Callable

import cramjam
import pytest
import zstandard

from gateway.codecs.compression import SUPPORTED, decompress
from gateway.codecs.snappy import FRAMED_MAGIC, MAX_EXPANSION
from gateway.codecs.zstd import MAX_BLOCKS, MAX_FRAMES, MIN_WINDOW
from gateway.errors import BadRequestError, TooLargeError, UnsupportedMediaTypeError

MIB = 1024 * 1024
LIMIT = 64 * MIB
PAYLOAD = os.urandom(3000) + b"span " * 60_000  # 303,000 bytes, partly incompressible


def zstd_stream(data: bytes, level: int = 3) -> bytes:
    """A frame without a content size, as streaming compressors (Go's writer) write it."""
    compressor = zstandard.ZstdCompressor(level=level).compressobj()
    return compressor.compress(data) + compressor.flush()


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def framed(data: bytes) -> bytes:
    return bytes(cramjam.snappy.compress(data))


def block(data: bytes) -> bytes:
    return bytes(cramjam.snappy.compress_raw(data))


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "zstd": zstandard.ZstdCompressor().compress,
    "zstd-stream": zstd_stream,
    "snappy-block": block,
    "snappy-framed": framed,
    "x-snappy-framed": framed,
    "deflate": zlib.compress,
    "deflate-raw": raw_deflate,
    "zlib": zlib.compress,
}


def header(name: str) -> str:
    return {"zstd-stream": "zstd", "snappy-block": "snappy", "snappy-framed": "snappy",
            "deflate-raw": "deflate"}.get(name, name)  # fmt: skip


@pytest.mark.parametrize("name", ENCODERS)
def test_round_trip_and_the_exact_limit(name: str) -> None:
    body = ENCODERS[name](PAYLOAD)
    assert decompress(body, header(name), len(PAYLOAD)) == PAYLOAD
    with pytest.raises(TooLargeError, match=f"limit of {len(PAYLOAD) - 1} bytes"):
        decompress(body, header(name), len(PAYLOAD) - 1)


@pytest.mark.parametrize("name", ENCODERS)
def test_a_bomb_is_refused_within_milliseconds(name: str) -> None:
    """256 MiB of one pattern (every codec's best case) against the 64 MiB default limit."""
    bomb = ENCODERS[name](b"abcdefgh" * (32 * MIB))
    started = time.perf_counter()
    with pytest.raises(TooLargeError):
        decompress(bomb, header(name), LIMIT)
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize("name", ENCODERS)
def test_junk_and_cut_bodies_are_bad_requests(name: str) -> None:
    body = ENCODERS[name](PAYLOAD)
    for broken in (b"this is not compressed at all", body[: len(body) // 2], body[:-3]):
        with pytest.raises(BadRequestError, match="invalid"):
            decompress(broken, header(name), LIMIT)


@pytest.mark.parametrize("name", ["zstd", "zstd-stream", "deflate", "snappy-framed"])
def test_data_after_the_end_is_a_bad_request(name: str) -> None:
    with pytest.raises(BadRequestError):
        decompress(ENCODERS[name](PAYLOAD) + b"trailing junk", header(name), LIMIT)


def test_zstd_reads_every_frame_and_skippable_frames() -> None:
    skippable = (0x184D2A53).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"12345"
    frames = [zstandard.ZstdCompressor().compress(b"one "), zstd_stream(b"two "), skippable,
              zstandard.ZstdCompressor().compress(b"")]  # fmt: skip
    assert decompress(b"".join(frames) + frames[0], "zstd", 100) == b"one two one "
    with pytest.raises(TooLargeError):
        decompress(b"".join(frames) + frames[0], "zstd", 11)


def test_zstd_limit_counts_all_frames() -> None:
    frame = zstd_stream(b"x" * 1000)
    assert len(decompress(frame * 5, "zstd", 5000)) == 5000
    with pytest.raises(TooLargeError):
        decompress(frame * 5, "zstd", 4999)


def test_zstd_declared_sizes_are_never_trusted() -> None:
    """A frame saying 1 TiB is refused at once; one saying 10 bytes but holding more fails."""
    liar = bytearray(zstandard.ZstdCompressor().compress(b"z" * 100_000))
    huge = zstandard.ZstdCompressor().compress(b"")
    params = zstandard.get_frame_parameters(huge)
    assert params.content_size == 0
    with pytest.raises(TooLargeError):  # a real 1 GiB frame's header alone
        decompress(zstandard.ZstdCompressor().compress(b"\0" * (1 << 30))[:20], "zstd", LIMIT)
    liar[5] ^= 0x01  # the content size field (1-2 bytes after the descriptor) now lies
    with pytest.raises(BadRequestError):
        decompress(bytes(liar), "zstd", LIMIT)


def test_zstd_frame_and_block_counts_are_capped() -> None:
    empty = zstandard.ZstdCompressor().compress(b"")
    assert decompress(empty * MAX_FRAMES, "zstd", 10) == b""
    with pytest.raises(BadRequestError, match="frames"):
        decompress(empty * (MAX_FRAMES + 1), "zstd", 10)
    # one frame of MAX_BLOCKS + 1 empty raw blocks: magic, descriptor (no size, window 1 KiB)
    blocks = (0).to_bytes(3, "little") * MAX_BLOCKS + (1).to_bytes(3, "little")
    with pytest.raises(BadRequestError, match="blocks"):
        decompress(b"\x28\xb5\x2f\xfd\x00\x00" + blocks, "zstd", LIMIT)


def test_zstd_window_over_the_cap_is_refused_before_decoding() -> None:
    wide = zstandard.ZstdCompressionParameters(window_log=24)  # 16 MiB, over MIN_WINDOW
    compressor = zstandard.ZstdCompressor(compression_params=wide).compressobj()
    body = compressor.compress(b"w" * 1000) + compressor.flush()
    assert zstandard.get_frame_parameters(body).window_size > MIN_WINDOW
    with pytest.raises(BadRequestError, match="window"):
        decompress(body, "zstd", MIN_WINDOW)
    assert decompress(body, "zstd", 32 * MIB) == b"w" * 1000  # the limit raises the cap


def test_snappy_block_declaring_more_than_it_can_hold() -> None:
    """A block's length header is checked before any buffer is made for it."""
    small = bytes([0xFF, 0xFF, 0xFF, 0x1F]) + b"\0" * 10  # says 64 MiB - 1 in 14 bytes
    with pytest.raises(BadRequestError, match="cannot hold"):
        decompress(small, "snappy", LIMIT)
    with pytest.raises(TooLargeError):
        decompress(bytes([0x80, 0x80, 0x80, 0x40]), "snappy", LIMIT)  # says 128 MiB
    data = b"a" * 100_000
    assert len(data) <= MAX_EXPANSION * len(block(data))


def test_snappy_framed_concatenated_streams_and_checksums() -> None:
    body = framed(b"first ") + framed(b"second")
    assert decompress(body, "snappy", 100) == b"first second"
    assert decompress(body, "x-snappy-framed", 100) == b"first second"
    corrupt = bytearray(framed(b"checksummed data"))
    corrupt[18] ^= 0xFF  # inside the masked CRC-32C of the first chunk
    with pytest.raises(BadRequestError, match="snappy"):
        decompress(bytes(corrupt), "snappy", 100)
    with pytest.raises(BadRequestError, match="stream identifier"):
        decompress(block(b"a block"), "x-snappy-framed", 100)


def test_snappy_framed_reserved_chunks_are_refused() -> None:
    magic = FRAMED_MAGIC
    with pytest.raises(BadRequestError, match="reserved chunk"):
        decompress(magic + b"\x02\x01\x00\x00x", "snappy", 100)
    skippable = b"\xfe\x02\x00\x00pp"  # padding is skipped
    assert decompress(magic + skippable + framed(b"ok")[10:], "snappy", 100) == b"ok"


def test_deflate_takes_both_zlib_and_raw_streams() -> None:
    assert decompress(zlib.compress(b"wrapped"), "deflate", 100) == b"wrapped"
    assert decompress(raw_deflate(b"raw"), "Deflate", 100) == b"raw"
    with pytest.raises(BadRequestError, match="invalid deflate body"):
        decompress(zlib.compress(b"x" * 100) + b"more", "deflate", 1000)


def test_unknown_encodings_list_the_accepted_ones() -> None:
    with pytest.raises(UnsupportedMediaTypeError) as refused:
        decompress(b"x", "br", 10)
    for name in ("gzip", "zstd", "snappy", "deflate"):
        assert name in str(refused.value)
    assert set(SUPPORTED) >= {"gzip", "zstd", "snappy", "x-snappy-framed", "deflate", "zlib"}
