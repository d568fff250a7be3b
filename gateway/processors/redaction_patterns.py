r"""What the ``redaction`` processor finds inside string values, and how cheaply.

:class:`ValueScanner` masks the matching part of a string (never the whole value) for the
built-in patterns and the user's ``blocked_values``, and counts each mask by rule:

- ``card``: 13-19 digits, optionally grouped by single spaces or dashes, starting with 2-6
  (the payment card industries: Mastercard 2/5, Amex, JCB and Diners 3, Visa 4, Discover,
  UnionPay and Maestro 6) and passing the Luhn check. Digit groups are whole words: a longer
  number (an id, a 19-digit nanosecond timestamp starting with 1) is not a card, nor are the
  digits inside a hex id (``container.id``, a trace id in a log line) or glued to letters;
  in a run of groups (``12 4111 1111 1111 1111``) the groups that form a card are masked
  (all the groups of overlapping candidates, so that no digit of a card is left).
- ``email``: ``local@domain.tld``, the whole address.
- ``bearer``: the credentials after ``Bearer`` (8+ token characters, with a non-letter or 20+
  long, so ``Bearer authentication`` stays) and after ``Basic`` (when they decode to
  ``user:password``), and JWT-shaped strings anywhere (``eyJ….eyJ….sig``).
- ``password``: the value in ``password=…``, ``pwd: …``, ``"client_secret": "…"``,
  ``api_key=…``, ``access_token=…``, ``'cvv': '…'`` (a key ending in one of
  ``_SECRET_WORDS``, any prefix) and the password in a URL's userinfo
  (``postgres://app:…@db``). Attributes whose *key* is named like a secret are masked whole
  by the processor (:func:`is_secret_key`).

Letters match ignoring ASCII case; every class is ASCII (``\s`` is ASCII white space).

Cost: the common case (nothing matches) must stay cheap, so every rule runs only behind a
prefilter in C (``'@' in text``, a keyword in ``text.lower()``, 13 digits counted with
``bytes.translate``: a regex pass over text costs more than all of them); strings found clean
are remembered (bounded), so repeated values (resources, methods, routes) cost a set lookup.
Every regex here is linear in its input: candidate starts are pinned by lookbehinds or
literals, and quoted values are bounded.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import accumulate
from typing import Literal

PatternName = Literal["card", "email", "bearer", "password"]
BUILTIN_PATTERNS: tuple[PatternName, ...] = ("card", "email", "bearer", "password")

_SECRET_WORDS = r"passw(?:or)?d|pwd|passphrase|secret|token|api[_-]?key|private[_-]?key|cvv2?|cvc"
# A key naming a secret: its name ends with one of the words (``db.password``,
# ``http.request.header.authorization``, ``client_secret``, ``userPassword``), but not
# ``gen_ai.usage.input_tokens``, ``llm.token_count.prompt`` or ``messaging.kafka.message.key``.
_SECRET_KEY = re.compile(
    rf"(?:{_SECRET_WORDS}|authorization|cookie|credentials?)\Z", re.IGNORECASE | re.ASCII
)
_URL_USERINFO = re.compile(r"://[^\s/?#@:]*:(?P<value>[^\s/?#]+)@", re.ASCII)
_AUTH_SCHEME = re.compile(
    r"\b(?P<scheme>bearer|basic)\s+(?P<value>[A-Za-z0-9._~+/-]+=*)", re.IGNORECASE | re.ASCII
)
# A JWT starts a run of base64url characters (one attempt per run: linear).
_JWT = re.compile(
    r"eyJ(?<![A-Za-z0-9_-]eyJ)[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){1,3}"
)
# ``password=v``, ``pwd: v``, ``"api_key": "v"``, ``'secret': 'v'``: the key may have a prefix
# (``db_password``, ``userPassword``) and starts a word; quoted values end at their quote (or
# after 512 characters), bare values at a space, quote or separator.
_PAIR = re.compile(
    rf"(?<![A-Za-z0-9_.-])[A-Za-z0-9_.-]*?(?:{_SECRET_WORDS})[\"']?\s*[:=]\s*"
    r"(?:\"(?P<dq>(?:[^\"\\\n]|\\.){1,512})\"?"
    r"|'(?P<sq>[^'\n]{1,512})'?"
    r"|(?P<bare>[^\s\"',;&#}\]]{1,512}))",
    re.IGNORECASE | re.ASCII,
)
_PAIR_GROUPS = ("dq", "sq", "bare")
# An address is ``local@domain.tld``; the regex finds the ``@`` and the domain, the local part
# (these characters, right before the ``@``) is taken by ``str.rstrip``.
_EMAIL_DOMAIN = re.compile(r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_LOCAL_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-"
# A run of digit groups joined by single spaces or dashes; a group is a whole word of digits
# (a hex id's or a token's digits are not: no letter or digit may touch the run). The
# lookbehind comes after the first digit so that the regex starts with a character class.
_DIGIT_RUN = re.compile(r"[0-9](?<![0-9A-Za-z][0-9])[0-9]*(?:[ -][0-9]+)*(?![0-9A-Za-z])")
_DIGIT_GROUP = re.compile(r"[0-9]+")
_CARD_FIRST = frozenset("23456")
_NO_SEPARATORS = str.maketrans("", "", " -")
_CARD_GROUPS = 8  # a card is written in at most this many groups (4-4-4-4-3, pairs of 2)

#: The shortest text each pattern can change (``pwd=x``, ``a@b.io``, ``Basic YTpi``...).
_SHORTEST = {"card": 13, "email": 6, "bearer": 10, "password": 5}
_CLEAN_MAX_LEN = 256  # strings found clean are remembered up to this length...
_CLEAN_MAX_ENTRIES = 16384  # ...and this many (then forgotten at once)
MAX_VALUE_LENGTH = 256 * 1024  # characters; a longer string is masked whole, not scanned
_MAX_PASSES = 4  # over a string that changed (it takes two in practice)

_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def luhn_valid(digits: str) -> bool:
    """Whether ``digits`` (ASCII 0-9 only) passes the Luhn checksum."""
    doubled = map(_DOUBLED.__getitem__, map(int, digits[-2::-2]))
    total = sum(map(int, digits[-1::-2])) + sum(doubled)
    return total % 10 == 0


def is_card_number(digits: str) -> bool:
    """Whether ``digits`` (no separators) is what the ``card`` rule masks."""
    return 13 <= len(digits) <= 19 and digits[0] in _CARD_FIRST and luhn_valid(digits)


def card_spans(run: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` slices of a digit run (digits joined by single spaces or dashes)
    that hold card numbers: every set of up to 8 consecutive whole groups that is one,
    overlapping sets merged (so no digit of any of them is left)."""
    groups = [(m.start(), m.end()) for m in _DIGIT_GROUP.finditer(run)]
    merged: list[list[int]] = []  # [first group, last group]
    windows = _long_run_windows(run, groups) if len(groups) > 16 else _windows(run, groups)
    for i, j in windows:
        if merged and i <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], j)
        else:
            merged.append([i, j])
    return [(groups[i][0], groups[j][1]) for i, j in merged]


def _windows(run: str, groups: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """``(first, last)`` group of each card in a short run (the usual one to five groups)."""
    for i in range(len(groups)):
        if run[groups[i][0]] not in _CARD_FIRST:
            continue
        digits = ""
        for j in range(i, min(len(groups), i + _CARD_GROUPS)):
            digits += run[groups[j][0] : groups[j][1]]
            if len(digits) > 19:
                break
            if len(digits) >= 13 and luhn_valid(digits):
                yield i, j


def _long_run_windows(run: str, groups: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """The same for a run of many groups: each candidate's Luhn sum comes from prefix sums
    (two subtractions), so a hostile run of thousands of groups costs a few list operations
    in C per digit, not a sum of up to 19 digits per candidate."""
    ends = list(accumulate((end - start for start, end in groups), initial=0))
    values = list(map(int, run.translate(_NO_SEPARATORS)))
    doubled = list(map(_DOUBLED.__getitem__, values))
    # Luhn doubles every second digit counting from the last one: when the last digit of a
    # candidate is at an even offset, odd offsets are doubled (plain_even), else even ones.
    plain_even, plain_odd = values[:], doubled[:]
    plain_even[1::2], plain_odd[1::2] = doubled[1::2], values[1::2]
    sums = (list(accumulate(plain_even, initial=0)), list(accumulate(plain_odd, initial=0)))
    count = len(groups)
    for i in range(count):
        first = ends[i]
        if ends[min(i + _CARD_GROUPS, count)] - first < 13 or not 2 <= values[first] <= 6:
            continue  # too few digits within reach, or not starting with 2-6
        for j in range(i, min(count, i + _CARD_GROUPS)):
            last = ends[j + 1]
            if last - first > 19:
                break
            if last - first >= 13:
                prefix = sums[(last - 1) & 1]
                if (prefix[last] - prefix[first]) % 10 == 0:
                    yield i, j


def email_spans(text: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` slices of ``text`` that are e-mail addresses, found from each
    ``@``: the domain forward by regex, the local part backward (C-level ``rstrip``), so the
    cost stays linear however long the runs of letters are."""
    found: list[tuple[int, int]] = []
    floor = 0  # a local part never reaches back into the previous address or past an "@"
    for m in _EMAIL_DOMAIN.finditer(text):
        at = m.start()
        before = text[floor:at]
        local = len(before) - len(before.rstrip(_LOCAL_CHARS))
        if local:
            found.append((at - local, m.end()))
            floor = m.end()
        else:
            floor = at + 1
    return found


def is_secret_key(key: str) -> bool:
    """Whether an attribute key names a secret (masked whole by the ``password`` rule)."""
    return _SECRET_KEY.search(key) is not None


def _basic_credentials(value: str) -> bool:
    """Whether ``Basic`` credentials decode to printable ``user:password``."""
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode()
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        return False
    return ":" in decoded and decoded.isprintable()


def compile_blocked_value(pattern: str) -> re.Pattern[str]:
    """A user's ``blocked_values`` regex, or ValueError saying what is wrong with it."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None
    if compiled.match("") is not None:
        raise ValueError("must not match the empty string")
    return compiled


class ValueScanner:
    """Masks what the enabled rules find in strings; ``masked`` counts masks by rule.

    One scanner per processor (not thread-safe: the gateway runs processors on its event loop).
    """

    def __init__(
        self,
        patterns: Iterable[str],
        blocked_values: Sequence[re.Pattern[str]],
        mask: str,
        max_length: int = MAX_VALUE_LENGTH,
    ) -> None:
        enabled = set(patterns)
        unknown = enabled - set(BUILTIN_PATTERNS)
        if unknown:
            raise ValueError(f"unknown patterns: {', '.join(sorted(unknown))}")
        self.mask = mask
        self.max_length = max_length
        self.masked: dict[str, int] = {}
        self.total = 0  # masks so far, for per-item summaries
        self._card = "card" in enabled
        self._email = "email" in enabled
        self._bearer = "bearer" in enabled
        self._password = "password" in enabled
        self._blocked = tuple(blocked_values)
        self.active = bool(enabled or self._blocked)
        self.min_len = 1 if self._blocked else min((_SHORTEST[p] for p in enabled), default=0)
        #: Strings found clean (the processor checks it before calling :meth:`scan`).
        self.clean: set[str] = set()
        # Bound once: a new closure per string would cost more than the rules.
        self._subs: dict[str, Callable[[re.Match[str]], str]] = {
            "card": self._card_sub,
            "bearer": self._auth_sub,
            "jwt": self._jwt_sub,
            "url": self._url_sub,
            "pair": self._pair_sub,
            "blocked": self._blocked_sub,
        }

    def _count(self, rule: str) -> None:
        self.masked[rule] = self.masked.get(rule, 0) + 1
        self.total += 1

    def _value(self, m: re.Match[str], group: str, rule: str) -> str:
        """The match with only ``group`` masked (unless it already is)."""
        text, start, end = m.string, m.start(group), m.end(group)
        if text.startswith(self.mask, start) and end <= start + len(self.mask):
            return m.group()  # masked already (by the service, or a mask ending in ``]``)
        self._count(rule)
        return text[m.start() : start] + self.mask + text[end : m.end()]

    def _card_sub(self, m: re.Match[str]) -> str:
        run = m.group()
        if len(run) < 13:
            return run
        spans = card_spans(run)
        if not spans:
            return run
        parts: list[str] = []
        last = 0
        for start, end in spans:
            parts += (run[last:start], self.mask)
            self._count("card")
            last = end
        parts.append(run[last:])
        return "".join(parts)

    def _emails(self, text: str) -> str:
        spans = email_spans(text)
        if not spans:
            return text
        parts: list[str] = []
        last = 0
        for start, end in spans:
            parts += (text[last:start], self.mask)
            self._count("email")
            last = end
        parts.append(text[last:])
        return "".join(parts)

    def _jwt_sub(self, m: re.Match[str]) -> str:
        self._count("bearer")
        return self.mask

    def _auth_sub(self, m: re.Match[str]) -> str:
        value = m.group("value")
        if m.group("scheme").lower() == "basic":
            if not _basic_credentials(value):
                return m.group()
        elif len(value) < 8 or (len(value) < 20 and value.isalpha()):
            return m.group()  # a word ("Bearer authentication"), not a token
        return self._value(m, "value", "bearer")

    def _url_sub(self, m: re.Match[str]) -> str:
        return self._value(m, "value", "password")

    def _pair_sub(self, m: re.Match[str]) -> str:
        for group in _PAIR_GROUPS:
            if m.start(group) >= 0:
                return self._value(m, group, "password")
        return m.group()  # unreachable: one value group always matches

    def _blocked_sub(self, m: re.Match[str]) -> str:
        found = m.group()
        if not found or found == self.mask:
            return found  # a zero-width match (``\b``) masks nothing
        self._count("blocked_value")
        return self.mask

    def scan(self, text: str) -> str | None:
        """``text`` with what the rules find masked, or None when nothing was."""
        if len(text) < self.min_len or text in self.clean:
            return None
        if len(text) > self.max_length:
            # Worst-case text costs ~1 µs a character: past this a string is not scanned
            # (the event loop stays free), it goes whole.
            self._count("too_long")
            return self.mask
        new = self._apply(text)
        if new == text:
            if len(text) <= _CLEAN_MAX_LEN:
                if len(self.clean) >= _CLEAN_MAX_ENTRIES:
                    self.clean.clear()
                self.clean.add(text)
            return None
        # A mask can complete what an earlier rule needed (a card masked inside a URL's
        # userinfo makes it one): go on until nothing changes, so that masking what was
        # masked once changes (and counts) nothing.
        for _ in range(_MAX_PASSES - 1):
            again = self._apply(new)
            if again == new:
                break
            new = again
        return new

    def _apply(self, text: str) -> str:
        """One pass of every enabled rule over ``text``."""
        new = text
        subs = self._subs
        if self._bearer or self._password:
            low = text.lower()
            if self._password and "@" in text and "://" in text:
                new = _URL_USERINFO.sub(subs["url"], new)
            if self._bearer:
                if "bearer" in low or "basic" in low:
                    new = _AUTH_SCHEME.sub(subs["bearer"], new)
                if "eyJ" in new:
                    new = _JWT.sub(subs["jwt"], new)
            if (
                self._password
                and ("=" in text or ":" in text)
                and (
                    "pass" in low
                    or "pwd" in low
                    or "secret" in low
                    or "token" in low
                    or "key" in low
                    or "cv" in low
                )
            ):
                new = _PAIR.sub(subs["pair"], new)
        if self._email and "@" in new:
            new = self._emails(new)
        if self._card and len(new) >= 13:
            # Counting digits in C costs a fifth of a regex pass over text that has few.
            encoded = new.encode()
            if len(encoded) - len(encoded.translate(None, b"0123456789")) >= 13:
                new = _DIGIT_RUN.sub(subs["card"], new)
        for pattern in self._blocked:
            new = pattern.sub(subs["blocked"], new)
        return new
