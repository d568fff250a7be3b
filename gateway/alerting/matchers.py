"""Label matchers, as Alertmanager writes them: ``name="value"``, ``name!="value"``,
``name=~"regex"``, ``name!~"regex"`` (quotes optional; regexes are anchored)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_MATCHER = re.compile(
    r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|(.*?))\s*'
)


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher; a missing label matches as the empty string (Alertmanager)."""

    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    def __post_init__(self) -> None:
        if self.is_regex:
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {self.value!r}: {exc}") from None

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this matcher."""
        have = labels.get(self.name, "")
        hit = re.fullmatch(self.value, have) is not None if self.is_regex else have == self.value
        return hit == self.is_equal

    def __str__(self) -> str:
        op = {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{op[(self.is_regex, self.is_equal)]}"{escaped}"'

    def as_json(self) -> dict[str, Any]:
        """Alertmanager's v2 API shape."""
        return {
            "name": self.name,
            "value": self.value,
            "isRegex": self.is_regex,
            "isEqual": self.is_equal,
        }


def parse_matcher(text: str) -> Matcher:
    """A matcher from ``name="value"`` text; ``ValueError`` saying what is wrong."""
    found = _MATCHER.fullmatch(text)
    if found is None:
        raise ValueError(f'invalid matcher {text!r} (want name="value", !=, =~ or !~)')
    name, op, quoted, bare = found.groups()
    value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
    return Matcher(name, value, is_regex="~" in op, is_equal=op in ("=", "=~"))


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether every matcher matches (true for none)."""
    return all(m.matches(labels) for m in matchers)
