"""Masking of sensitive data in headers, bodies and free text (pure functions).

Everything the instrumentation logs or puts on spans about a request goes through here:
header values by header name, structured data by key name, and any string by value
patterns (card numbers that pass the Luhn check, e-mail addresses, extra patterns).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

MASK = "***"

DEFAULT_SENSITIVE_HEADERS: frozenset[str] = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
)

DEFAULT_KEY_PATTERNS: tuple[str, ...] = (
    r"passw(or)?d",
    r"^pwd$",
    r"secret",
    r"token",
    r"api[-_]?key",
    r"authori[sz]ation",
    r"cookie",
    r"private[-_]?key",
    r"card[-_]?(number|num|no)",
    r"^(cc|credit[-_]?card)([-_]?(number|num|no))?$",
    r"^(pan|cvv|cvc|cvv2)$",
)

# 13-19 digits, optionally grouped by single spaces or dashes; Luhn decides.
_CARD_CANDIDATE = re.compile(r"(?<![\w])\d(?:[ -]?\d){12,18}(?![\w])")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_MAX_DEPTH = 32


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` (only 0-9) passes the Luhn checksum."""
    if not digits or not digits.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def looks_like_card_number(text: str) -> bool:
    """True when ``text`` is 13-19 digits (spaces/dashes allowed) with a valid Luhn sum."""
    digits = re.sub(r"[ -]", "", text)
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


@dataclass(frozen=True)
class MaskingConfig:
    """What counts as sensitive. Patterns are regular expressions, matched case-insensitively.

    ``key_patterns`` match dictionary keys / form field names (the whole value is masked);
    ``value_patterns`` match inside any string (only the match is masked). Card numbers
    (Luhn-checked) and e-mail addresses are masked when ``mask_cards`` / ``mask_emails``.
    """

    sensitive_headers: frozenset[str] = DEFAULT_SENSITIVE_HEADERS
    key_patterns: tuple[str, ...] = DEFAULT_KEY_PATTERNS
    value_patterns: tuple[str, ...] = ()
    mask_cards: bool = True
    mask_emails: bool = True
    mask: str = MASK
    _key_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _value_res: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        headers = frozenset(h.lower() for h in self.sensitive_headers)
        object.__setattr__(self, "sensitive_headers", headers)
        joined = "|".join(f"(?:{p})" for p in self.key_patterns)
        key_re = re.compile(joined, re.IGNORECASE) if joined else None
        object.__setattr__(self, "_key_re", key_re)
        values = tuple(re.compile(p, re.IGNORECASE) for p in self.value_patterns)
        object.__setattr__(self, "_value_res", values)

    def extended(
        self,
        *,
        headers: Iterable[str] = (),
        key_patterns: Iterable[str] = (),
        value_patterns: Iterable[str] = (),
    ) -> MaskingConfig:
        """A copy with more sensitive headers / key patterns / value patterns."""
        return MaskingConfig(
            sensitive_headers=self.sensitive_headers | {h.lower() for h in headers},
            key_patterns=self.key_patterns + tuple(key_patterns),
            value_patterns=self.value_patterns + tuple(value_patterns),
            mask_cards=self.mask_cards,
            mask_emails=self.mask_emails,
            mask=self.mask,
        )


DEFAULT_MASKING = MaskingConfig()


def is_sensitive_key(key: str, config: MaskingConfig = DEFAULT_MASKING) -> bool:
    """True when a field name matches one of the key patterns."""
    return config._key_re is not None and config._key_re.search(key) is not None


def is_sensitive_header(name: str, config: MaskingConfig = DEFAULT_MASKING) -> bool:
    """True when a header name is in the sensitive set (case-insensitive)."""
    return name.lower() in config.sensitive_headers


def mask_value(text: str, config: MaskingConfig = DEFAULT_MASKING) -> str:
    """Mask card numbers, e-mail addresses and configured value patterns inside ``text``."""
    if config.mask_cards:
        text = _CARD_CANDIDATE.sub(
            lambda m: config.mask if looks_like_card_number(m.group(0)) else m.group(0), text
        )
    if config.mask_emails:
        text = _EMAIL.sub(config.mask, text)
    for pattern in config._value_res:
        text = pattern.sub(config.mask, text)
    return text


def mask_data(data: Any, config: MaskingConfig = DEFAULT_MASKING, _depth: int = 0) -> Any:
    """Recursively mask decoded JSON-like data (dicts, lists, strings, numbers)."""
    if _depth > _MAX_DEPTH:
        return config.mask
    if isinstance(data, Mapping):
        return {
            str(k): config.mask
            if is_sensitive_key(str(k), config)
            else mask_data(v, config, _depth + 1)
            for k, v in data.items()
        }
    if isinstance(data, list | tuple):
        return [mask_data(item, config, _depth + 1) for item in data]
    if isinstance(data, str):
        return mask_value(data, config)
    is_int = isinstance(data, int) and not isinstance(data, bool)
    if is_int and config.mask_cards and looks_like_card_number(str(abs(data))):
        return config.mask
    return data


def mask_headers(
    headers: Iterable[tuple[str | bytes, str | bytes]] | Mapping[str, str],
    config: MaskingConfig = DEFAULT_MASKING,
) -> dict[str, str]:
    """Header pairs (ASGI bytes or str) to a dict with lower-case names and masked values.

    Repeated headers are joined with ", " (``set-cookie`` too, after masking).
    """
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for raw_name, raw_value in pairs:
        name = _text(raw_name).lower()
        value = config.mask if is_sensitive_header(name, config) else _text(raw_value)
        value = mask_value(value, config)
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def mask_query_string(query: str, config: MaskingConfig = DEFAULT_MASKING) -> str:
    """Mask sensitive parameters (by name) and sensitive values in a URL query string."""
    if not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    masked = [
        (k, config.mask if is_sensitive_key(k, config) else mask_value(v, config)) for k, v in pairs
    ]
    return urlencode(masked, safe="*@")


def mask_text(text: str, config: MaskingConfig = DEFAULT_MASKING) -> str:
    """Best-effort masking of unparsed text (e.g. a truncated JSON or form body).

    Masks ``"key": "value"`` / ``"key": 123`` and ``key=value`` pairs whose key is
    sensitive, then applies :func:`mask_value`.
    """

    def json_pair(m: re.Match[str]) -> str:
        if is_sensitive_key(m.group("key"), config):
            return f'{m.group("head")}"{config.mask}"'
        return m.group(0)

    def kv_pair(m: re.Match[str]) -> str:
        if is_sensitive_key(m.group("key"), config):
            return f"{m.group('head')}{config.mask}"
        return m.group(0)

    text = _JSON_PAIR.sub(json_pair, text)
    text = _KV_PAIR.sub(kv_pair, text)
    return mask_value(text, config)


_JSON_PAIR = re.compile(
    r'(?P<head>"(?P<key>[^"\\]{1,128})"\s*:\s*)'
    r'(?:"(?:[^"\\]|\\.)*"?|-?\d[\d.eE+-]*|true|false|null)'
)
_KV_PAIR = re.compile(r"(?P<head>(?<![\w.-])(?P<key>[\w.-]{1,128})=)[^&\s]*")


def mask_body(
    body: bytes,
    content_type: str | None,
    config: MaskingConfig = DEFAULT_MASKING,
    *,
    truncated: bool = False,
) -> Any:
    """A masked, loggable form of an HTTP body.

    JSON bodies come back as masked data (dict/list/...), form bodies as a masked dict,
    anything else (or a truncated body) as masked text; binary bodies as a size marker.
    """
    if not body:
        return ""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return f"<{len(body)} bytes binary>"
    if not truncated and (media == "application/json" or media.endswith("+json")):
        try:
            return mask_data(json.loads(text), config)
        except ValueError:
            pass
    if not truncated and media == "application/x-www-form-urlencoded":
        return {
            k: config.mask if is_sensitive_key(k, config) else mask_value(v, config)
            for k, v in parse_qsl(text, keep_blank_values=True)
        }
    return mask_text(text, config)


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value
