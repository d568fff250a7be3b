"""What users type into a telemetry query, checked and translated for SQLite.

Full-text queries use a small syntax of their own, never raw FTS5 (whose operators, column
filters and quoting would turn typos into SQL errors):

- words are ANDed: ``payment declined`` finds records holding both words, anywhere;
- ``"quoted phrase"`` finds the words next to each other, in order;
- ``word*`` (or ``"a phrase"*``) finds words starting with ``word``;
- ``-word`` (or ``-"a phrase"``) excludes records holding it (needs one term that is not
  excluded).

Matching is per word (letters and digits; everything else separates words), case-insensitive
and diacritics-insensitive, over the log body and the values of the searchable attributes.
Every term is passed to FTS5 as a quoted string, so no input can form an FTS5 operator. An
unbalanced quote, or a query with nothing left to search, raises ``ValueError``.
"""

from __future__ import annotations

import base64
import binascii
import re

MAX_QUERY_CHARS = 1000
MAX_TERMS = 32
SEVERITIES = {"trace": 1, "debug": 5, "info": 9, "warn": 13, "warning": 13, "error": 17,
              "fatal": 21}  # fmt: skip
_TERM = re.compile(r'(-?)(?:"([^"]*)"|([^\s"]+))(\*?)')
_HEX = re.compile(r"[0-9a-fA-F]+")


def fts_query(text: str) -> str:
    """The FTS5 expression for a query in the syntax above."""
    if len(text) > MAX_QUERY_CHARS:
        raise ValueError(f"the query is longer than {MAX_QUERY_CHARS} characters")
    if text.count('"') % 2:
        raise ValueError('unbalanced quote (") in the query')
    included: list[str] = []
    excluded: list[str] = []
    position = 0
    for match in _TERM.finditer(text):
        if text[position : match.start()].strip():
            raise ValueError(f"cannot read the query near {text[position:][:20]!r}")
        position = match.end()
        minus, phrase, word, star = match.groups()
        term = phrase if phrase is not None else word
        if word is not None and word.endswith("*"):
            term, star = word.rstrip("*"), "*"
        if not any(ch.isalnum() for ch in term):
            continue  # punctuation only: nothing FTS5 would index
        quoted = '"' + term.replace('"', '""') + '"' + (" *" if star else "")
        (excluded if minus else included).append(quoted)
    if text[position:].strip():
        raise ValueError(f"cannot read the query near {text[position:][:20]!r}")
    if not included:
        raise ValueError("the query has no word to search for (excluded terms alone match nothing)")
    if len(included) + len(excluded) > MAX_TERMS:
        raise ValueError(f"the query has more than {MAX_TERMS} terms")
    expression = "(" + " AND ".join(included) + ")"
    return expression + "".join(" NOT " + term for term in excluded)


def severity_number(value: str | int) -> int:
    """The minimum severity number for a name (``trace`` ... ``fatal``) or number (1-24)."""
    if isinstance(value, int) or value.strip().isdigit():
        number = int(value)
        if not 1 <= number <= 24:
            raise ValueError(f"severity number {number} is not in 1-24")
        return number
    found = SEVERITIES.get(value.strip().lower())
    if found is None:
        names = ", ".join(sorted(SEVERITIES))
        raise ValueError(f"unknown severity {value!r}: use one of {names}, or a number 1-24")
    return found


def trace_id_bytes(text: str) -> bytes:
    """A trace id from its 32 hex digits."""
    return _hex_id(text, 16, "trace id")


def span_id_bytes(text: str) -> bytes:
    """A span id from its 16 hex digits."""
    return _hex_id(text, 8, "span id")


def _hex_id(text: str, size: int, what: str) -> bytes:
    if len(text) != size * 2 or not _HEX.fullmatch(text):
        raise ValueError(f"a {what} is {size * 2} hex digits, got {text[:64]!r}")
    value = bytes.fromhex(text)
    if value == bytes(size):
        raise ValueError(f"an all-zero {what} is invalid")
    return value


def encode_cursor(time_ns: int, row_id: int) -> str:
    """An opaque cursor for "records before (time, id)"."""
    raw = f"{time_ns}:{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    """(time, id) from a cursor of :func:`encode_cursor`."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        time_text, id_text = raw.split(":")
        time_ns, row_id = int(time_text), int(id_text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValueError(f"invalid cursor {cursor[:64]!r}") from None
    if not (abs(time_ns) < 2**63 and 0 <= row_id < 2**63):
        raise ValueError(f"invalid cursor {cursor[:64]!r}")
    return time_ns, row_id
