"""Cutting syslog streams into messages (RFC 6587), with a cap on each message's size.

UDP (RFC 5426): one datagram is one message. TCP: messages are framed either by *octet
counting* (``123 <34>1 ...``: the length, a space, that many bytes; RFC 5425 requires it over
TLS) or by a newline after each message (*non-transparent* framing: what ``logger --tcp`` and
``*.* @@host`` in syslog.conf send). In newline framing a NUL byte ends a message too
(rsyslog's ``AddtlFrameDelimiter=0``): Python's ``logging.handlers.SysLogHandler`` over TCP ends
each message with NUL and no LF. With ``auto`` the first byte of a connection decides: a
digit means octet counting. A header that is not a length (a sender mixing framings, or a
newline-framed message starting with a digit), or a length over :data:`MAX_OCTET_COUNT`
(16 MiB, the largest ``max_message_size``; a bigger one is garbage and would swallow the
messages after it), is reported as a framing error and the stream goes on with newline
framing, so its bytes still arrive as messages. Trailing CR, LF and NUL bytes are removed from
each message; empty messages are skipped.

A message longer than ``max_size`` is cut to it and marked (:attr:`Frame.cut`), never
dropped; the cut backs off to a UTF-8 character boundary (up to 3 bytes, counted in ``cut``)
so a cut text message still decodes; the rest of it is skipped as it streams in, so a stream
holds at most one message's worth of bytes. An incomplete message at the end of a stream
(:meth:`Framer.end`) is kept too; when the sender announced more bytes than it sent, it is
marked cut by the difference.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Framing = Literal["auto", "octet_counting", "newline"]
MAX_LENGTH_DIGITS = 10  # an octet-counting header longer than this is not a length
MAX_OCTET_COUNT = 16 * 1024 * 1024  # a longer announced message is a framing error
_TRAILER = b"\r\n\x00"  # removed from the end of a message (LF framing, CRLF and NUL senders)


@dataclass(frozen=True, slots=True)
class Frame:
    """One message as received: at most ``max_message_size`` bytes; ``cut`` counts the bytes
    the sender sent (or announced) beyond what ``data`` holds (0: whole)."""

    data: bytes
    cut: int = 0


def _frame(message: bytes, cut: int) -> Frame | None:
    """A frame, its cut backed off to a UTF-8 boundary (None when empty and whole)."""
    if cut:
        back = _broken_tail(message)
        if back:
            message, cut = message[:-back], cut + back
    return Frame(message, cut) if message or cut else None


def _broken_tail(data: bytes) -> int:
    """How many bytes at the end of ``data`` start a UTF-8 character and miss the rest (0-3):
    what a UTF-8 decoder holds back, waiting for more."""
    decoder = codecs.getincrementaldecoder("utf-8")("ignore")
    decoder.decode(data[-3:], final=False)
    return len(decoder.getstate()[0])


def datagram_frame(data: bytes, max_size: int) -> Frame | None:
    """The message of one UDP datagram (None for an empty one)."""
    cut = max(0, len(data) - max_size)
    return _frame((data[:max_size] if cut else data).rstrip(_TRAILER), cut)


class Framer:
    """Cuts one TCP stream into :class:`Frame` s (RFC 6587; see the module docstring)."""

    def __init__(
        self, framing: Framing, max_size: int, on_error: Callable[[], None] | None = None
    ) -> None:
        self.mode: Framing = framing
        self.max_size = max_size
        self._on_error = on_error
        self._buf = bytearray()  # the current message, up to max_size bytes
        self._size = 0  # bytes of the current message received (newline) or announced (octets)
        self._need = 0  # octet counting: bytes of the current message still to come
        self._head = bytearray()  # octet counting: the length header read so far
        self._cr = False  # newline: the current line's last byte so far is CR

    @property
    def partial(self) -> bool:
        """Whether a message has started and is not complete yet."""
        return bool(self._size or self._head or self._need)

    def feed(self, data: bytes) -> list[Frame]:
        """The messages ``data`` completes, in order."""
        if self.mode == "auto":
            if not data:
                return []
            self.mode = "octet_counting" if data[:1].isdigit() else "newline"
        if self.mode == "newline":
            return self._lines(data, [])
        return self._octets(data, [])

    def end(self) -> list[Frame]:
        """The incomplete message at the end of the stream, if any (marked cut when the
        sender announced more bytes than it sent)."""
        if self._head:  # digits and no space: deliver them rather than lose them
            head, self._head = bytes(self._head), bytearray()
            self._error()
            return [Frame(head)]
        if not self._size:
            return []
        if self.mode == "newline":
            frame = self._line_end()
            return [frame] if frame is not None else []
        frame = self._counted()
        return [frame] if frame is not None else []

    # --- newline framing ------------------------------------------------------------------

    def _lines(self, data: bytes, frames: list[Frame]) -> list[Frame]:
        lines = data.replace(b"\x00", b"\n").split(b"\n")  # NUL ends a message too
        last = lines.pop()
        for index, line in enumerate(lines):
            if index == 0 and self._size:  # ends the line a previous chunk began
                self._append(line)
                frame = self._line_end()
            elif len(line) <= self.max_size:  # the common case: a whole line in this chunk
                message = line.rstrip(_TRAILER)
                frame = Frame(message) if message else None
            else:
                self._append(line)
                frame = self._line_end()
            if frame is not None:
                frames.append(frame)
        self._append(last)
        return frames

    def _append(self, chunk: bytes) -> None:
        if not chunk:
            return
        room = self.max_size - len(self._buf)
        if room > 0:
            self._buf += chunk[:room]
        self._size += len(chunk)
        self._cr = chunk.endswith(b"\r")

    def _line_end(self) -> Frame | None:
        size = self._size - 1 if self._cr else self._size  # CRLF: the CR is the trailer
        message = bytes(self._buf[:size]).rstrip(_TRAILER)
        cut = max(0, size - len(self._buf))
        self._reset()
        return _frame(message, cut)

    # --- octet counting -------------------------------------------------------------------

    def _octets(self, data: bytes, frames: list[Frame]) -> list[Frame]:
        pos, end = 0, len(data)
        while pos < end:
            if self._need:
                take = min(self._need, end - pos)
                room = self.max_size - len(self._buf)
                if room > 0:
                    self._buf += data[pos : pos + min(take, room)]
                self._need -= take
                pos += take
                if not self._need:
                    frame = self._counted()
                    if frame is not None:
                        frames.append(frame)
                continue
            if not self._head:  # between messages: tolerate line ends some senders add
                while pos < end and data[pos] in _TRAILER:
                    pos += 1
                if pos == end:
                    break
            window = MAX_LENGTH_DIGITS + 1 - len(self._head)  # where the space must be
            space = data.find(b" ", pos, pos + window)
            head = self._head + data[pos : space if space >= 0 else pos + window]
            if not head.isdigit() or head[:1] == b"0" or len(head) > MAX_LENGTH_DIGITS:
                return self._give_up(bytes(self._head) + data[pos:], frames)
            if space < 0:  # the header goes on in the next chunk
                self._head = head
                break
            if int(head) > MAX_OCTET_COUNT:  # garbage: it would swallow the messages after it
                return self._give_up(bytes(self._head) + data[pos:], frames)
            self._head = bytearray()
            self._need = self._size = int(head)
            pos = space + 1
        return frames

    def _counted(self) -> Frame | None:
        """The octet-counted message ending now (None when it holds only line ends)."""
        message = bytes(self._buf).rstrip(_TRAILER)
        cut = self._size - len(self._buf)
        self._reset()
        return _frame(message, cut)

    def _give_up(self, rest: bytes, frames: list[Frame]) -> list[Frame]:
        """Not a length header: count it and read the rest of the stream as lines."""
        self._error()
        self._head = bytearray()
        self.mode = "newline"
        return self._lines(rest, frames)

    def _error(self) -> None:
        if self._on_error is not None:
            self._on_error()

    def _reset(self) -> None:
        self._buf = bytearray()
        self._size = self._need = 0
        self._cr = False
