"""Cutting syslog TCP streams into messages (no I/O): newline and octet-counting framing, auto
detection, bad headers, long and incomplete messages."""

from __future__ import annotations

import codecs
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.receivers.syslog_framing import Frame, Framer, datagram_frame

# --- framing (pure) ---------------------------------------------------------------------------


def test_newline_framing_cuts_lines_across_chunks_and_keeps_the_last_at_the_end() -> None:
    framer = Framer("newline", 1024)
    assert framer.feed(b"<1>a\n<2>b\r\n\n<3>c") == [Frame(b"<1>a"), Frame(b"<2>b")]
    assert framer.partial
    assert framer.feed(b"d\r") == []
    assert framer.feed(b"\n<4>e") == [Frame(b"<3>cd")]
    assert framer.end() == [Frame(b"<4>e")]
    assert not framer.partial


def test_octet_counting_with_headers_and_bodies_split_anywhere() -> None:
    framer = Framer("octet_counting", 1024)
    stream = b"5 <1>ab12 <2>hello you7 <3>last"
    frames = [f for i in range(len(stream)) for f in framer.feed(stream[i : i + 1])]
    assert frames == [Frame(b"<1>ab"), Frame(b"<2>hello you"), Frame(b"<3>last")]
    assert not framer.partial


@settings(max_examples=300, deadline=None)
@given(
    messages=st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=10),
    octets=st.booleans(),
)
def test_any_stream_cut_anywhere_gives_back_its_messages(
    messages: list[bytes], cuts: list[int], octets: bool
) -> None:
    trailer, size = b"\r\n\x00", 16
    expected = []
    if octets:
        stream = b"".join(b"%d %s" % (len(m), m) for m in messages)
        for m in messages:
            expected.append(_utf8_cut(m[:size].rstrip(trailer), max(0, len(m) - size)))
    else:  # LF and NUL both end a line
        lines = [m.replace(b"\n", b" ").replace(b"\x00", b" ") for m in messages]
        stream = b"".join(line + b"\n" for line in lines)
        for line in lines:
            length = len(line) - line.endswith(b"\r")  # CR LF: the CR is framing
            data = line[: min(size, length)].rstrip(trailer)
            expected.append(_utf8_cut(data, max(0, length - size)))
    framer = Framer("octet_counting" if octets else "newline", size)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    frames = [f for a, b in itertools.pairwise(points) for f in framer.feed(stream[a:b])]
    frames += framer.end()
    assert [(f.data, f.cut) for f in frames] == [e for e in expected if e[0] or e[1]]
    assert not framer.partial


def _utf8_cut(data: bytes, cut: int) -> tuple[bytes, int]:
    """A cut message backs off an incomplete UTF-8 character at its end (the model)."""
    if not cut:
        return data, cut
    decoder = codecs.getincrementaldecoder("utf-8")("ignore")
    decoder.decode(data, final=False)
    back = len(decoder.getstate()[0])
    return data[: len(data) - back], cut + back


def test_auto_framing_is_decided_by_the_first_byte() -> None:
    assert Framer("auto", 64).feed(b"4 <1>a4 <1>b") == [Frame(b"<1>a"), Frame(b"<1>b")]
    assert Framer("auto", 64).feed(b"<1>4 a\n") == [Frame(b"<1>4 a")]


@pytest.mark.parametrize("garbage", [b"xx <1>not counted\n", b"0 <1>zero\n", b"12345678901 \n"])
def test_a_bad_octet_count_is_a_framing_error_and_the_rest_arrives_as_lines(
    garbage: bytes,
) -> None:
    errors: list[int] = []
    framer = Framer("octet_counting", 64, lambda: errors.append(1))
    frames = framer.feed(b"4 <1>a" + garbage + b"<2>b\n")
    assert frames == [Frame(b"<1>a"), Frame(garbage.rstrip(b"\n")), Frame(b"<2>b")]
    assert errors == [1]
    assert framer.mode == "newline"


def test_long_messages_are_cut_and_marked_with_the_bytes_cut_off() -> None:
    lines = Framer("newline", 8)
    assert lines.feed(b"0123456789") == []
    assert lines.feed(b"abc\r\nxy\n") == [Frame(b"01234567", cut=5), Frame(b"xy")]
    octets = Framer("octet_counting", 8)
    assert octets.feed(b"12 0123456789ab3 xyz") == [Frame(b"01234567", cut=4), Frame(b"xyz")]


def test_an_incomplete_message_at_the_end_is_kept_and_marked() -> None:
    framer = Framer("octet_counting", 64)
    assert framer.feed(b"10 <1>ab") == []
    assert framer.end() == [Frame(b"<1>ab", cut=5)]
    assert datagram_frame(b"<1>x\n\x00", 64) == Frame(b"<1>x")
    assert datagram_frame(b"0123456789", 4) == Frame(b"0123", cut=6)
    assert datagram_frame(b"\n", 4) is None
