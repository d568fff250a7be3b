"""Body decompression: every gzip member, a hard output cap, clear errors."""

from __future__ import annotations

import gzip

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.codecs.compression import MAX_GZIP_MEMBERS, decompress, gunzip
from gateway.errors import BadRequestError, TooLargeError, UnsupportedMediaTypeError
from tests.support.hostile import gzip_members


def test_every_member_is_inflated() -> None:
    """Issue 9, finding 6: two members (3 + 4 spans) gave only the first member's bytes."""
    assert gunzip(gzip_members(b"first ", b"second"), 100) == b"first second"


def test_the_limit_counts_all_members() -> None:
    body = gzip_members(b"a" * 60, b"b" * 60)
    assert len(gunzip(body, 120)) == 120
    with pytest.raises(TooLargeError):
        gunzip(body, 119)


def test_a_bomb_spread_over_members_is_refused() -> None:
    member = gzip.compress(b"\0" * 1_000_000)
    with pytest.raises(TooLargeError):
        gunzip(member * 100, 64 * 1024 * 1024)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (gzip_members(b"one", b"two")[:-3], "truncated"),
        (gzip_members(b"one") + b"garbage after the member", "invalid gzip body"),
        (b"", "truncated"),
        (b"not gzip at all", "invalid gzip body"),
    ],
)
def test_malformed_streams_are_bad_requests(body: bytes, problem: str) -> None:
    with pytest.raises(BadRequestError, match=problem):
        gunzip(body, 1000)


def test_members_are_capped() -> None:
    tiny = gzip.compress(b"")
    assert gunzip(tiny * MAX_GZIP_MEMBERS, 10) == b""
    with pytest.raises(BadRequestError, match="members"):
        gunzip(tiny * (MAX_GZIP_MEMBERS + 1), 10)


def test_identity_and_unknown_encodings() -> None:
    assert decompress(b"raw", None, 10) == b"raw"
    assert decompress(b"raw", " Identity ", 10) == b"raw"
    assert decompress(gzip.compress(b"x"), "GZIP", 10) == b"x"
    with pytest.raises(UnsupportedMediaTypeError, match="'br'"):
        decompress(b"raw", "br", 10)


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(st.binary(max_size=2000), min_size=1, max_size=5),
    cut=st.integers(0, 40),
    limit=st.integers(0, 6000),
)
def test_any_stream_inflates_fully_or_is_refused_clearly(
    parts: list[bytes], cut: int, limit: int
) -> None:
    """Multi-member and truncated streams: the whole content, or a 400/413, nothing else."""
    body = gzip_members(*parts)
    body = body[: len(body) - cut]
    try:
        out = gunzip(body, limit)
    except TooLargeError:
        assert len(b"".join(parts)) > limit
        return
    except BadRequestError:
        assert cut > 0
        return
    if cut == 0:
        assert out == b"".join(parts)
    else:  # the cut removed whole members only (a cut member would be "truncated")
        assert out in {b"".join(parts[:k]) for k in range(len(parts))}
