"""Log group and stream names with ``{resource.attribute}`` placeholders.

Like the Collector's awsemf and awscloudwatchlogs exporters, ``/otelgate/{service.name}``
takes the value of the resource attribute ``service.name``; a resource without it gets
``undefined``. Characters CloudWatch does not take in a name are replaced with ``_`` (for a
group anything outside ``[.\\-_/#A-Za-z0-9]``, for a stream ``:`` and ``*``), and the name is
cut at 512 characters, so a name from data never makes a call fail.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from exporters.cloudwatch.limits import (
    GROUP_NAME_BAD_CHARS,
    MAX_NAME_LENGTH,
    STREAM_NAME_BAD_CHARS,
)
from gateway.otlp.values import to_text

NameKind = Literal["group", "stream"]
MISSING = "undefined"  # what a placeholder without its attribute becomes (as in the Collector)
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_BAD = {"group": GROUP_NAME_BAD_CHARS, "stream": STREAM_NAME_BAD_CHARS}
_ALLOWED = {"group": "letters, digits and . - _ / #", "stream": "anything but : and *"}


@dataclass(frozen=True, slots=True)
class NameTemplate:
    """A group or stream name; ``parts`` alternate literal text and attribute keys."""

    text: str
    kind: NameKind
    parts: tuple[tuple[bool, str], ...]  # (is a placeholder, text or attribute key)

    @classmethod
    def parse(cls, text: str, kind: NameKind) -> NameTemplate:
        """The template of ``text``; ValueError says what is wrong with it."""
        parts: list[tuple[bool, str]] = []
        pos = 0
        for match in _PLACEHOLDER.finditer(text):
            parts.append((False, text[pos : match.start()]))
            key = match[1].strip()
            if not key:
                raise ValueError(f"'{text}': an empty placeholder {{}} (name a resource attribute)")
            parts.append((True, key))
            pos = match.end()
        parts.append((False, text[pos:]))
        literal = "".join(t for placeholder, t in parts if not placeholder)
        if "{" in literal or "}" in literal:
            raise ValueError(f"'{text}': unbalanced {{ or }} (placeholders are {{attribute}})")
        if not text:
            raise ValueError(f"a log {kind} name cannot be empty")
        bad = _BAD[kind].findall(literal)
        if bad:
            raise ValueError(
                f"'{text}': {''.join(sorted(set(bad)))!r} not allowed in a log {kind} name "
                f"({_ALLOWED[kind]})"
            )
        if len(literal) > MAX_NAME_LENGTH:
            raise ValueError(f"'{text[:40]}...' is longer than {MAX_NAME_LENGTH} characters")
        return cls(text, kind, tuple((p, t) for p, t in parts if p or t))

    @property
    def keys(self) -> tuple[str, ...]:
        """The resource attributes the name uses."""
        return tuple(t for placeholder, t in self.parts if placeholder)

    def render(self, attributes: Mapping[str, str]) -> str:
        """The name for a resource with ``attributes`` (key -> value as text)."""
        if not self.keys:
            return self.text
        bad = _BAD[self.kind]
        name = "".join(
            bad.sub("_", attributes.get(t) or MISSING) if placeholder else t
            for placeholder, t in self.parts
        )
        return name[:MAX_NAME_LENGTH]


def attribute_texts(attributes: Iterable[KeyValue], keys: Iterable[str]) -> dict[str, str]:
    """The values of ``keys`` among ``attributes``, as text (the first of a repeated key)."""
    wanted = set(keys)
    found: dict[str, str] = {}
    for kv in attributes:
        if kv.key in wanted and kv.key not in found:
            found[kv.key] = to_text(kv.value)
    return found
