"""``${env:VAR}`` expansion inside configuration values, applied after YAML parsing.

Supported forms, inside any string scalar (mapping keys are left alone):

* ``${env:NAME}`` and ``${NAME}`` — the variable's value; an error if it is not set.
* ``${env:NAME:-default}`` and ``${NAME:-default}`` — ``default`` if the variable is unset or
  empty (shell semantics).
* ``$${`` — a literal ``${``. A ``$`` not followed by ``{`` is kept as it is.

The result is always a string; pydantic's lax mode then turns ``"4317"`` into an int where
the model wants one. Problems are collected as ``(location, message)`` pairs so the caller can
report every one of them with its path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

Loc = tuple[str | int, ...]
"""A location in the parsed document: mapping keys and list indexes, outermost first."""

_TOKEN = re.compile(r"\$\$\{|\$\{([^{}]*)\}|\$\{")
_REFERENCE = re.compile(r"(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)


def expand_env(
    value: Any, environ: Mapping[str, str], loc: Loc, problems: list[tuple[Loc, str]]
) -> Any:
    """Return ``value`` with references expanded in every string it contains.

    Mappings and lists are copied, other scalars returned unchanged. A string with a problem is
    returned unexpanded and ``(loc, message)`` is appended to ``problems``.
    """
    if isinstance(value, str):
        return _expand_string(value, environ, loc, problems)
    if isinstance(value, dict):
        return {
            key: expand_env(item, environ, (*loc, str(key)), problems)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [expand_env(item, environ, (*loc, i), problems) for i, item in enumerate(value)]
    return value


def _expand_string(
    text: str, environ: Mapping[str, str], loc: Loc, problems: list[tuple[Loc, str]]
) -> str:
    if "${" not in text:
        return text
    out: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        out.append(text[pos : match.start()])
        pos = match.end()
        token = match.group(0)
        if token == "$${":
            out.append("${")
            continue
        body = match.group(1)
        if body is None:
            problems.append((loc, "unterminated '${' (write '$${' for a literal '${')"))
            return text
        reference = _REFERENCE.fullmatch(body)
        if reference is None:
            expected = "${env:NAME} or ${env:NAME:-default}"
            problems.append((loc, f"invalid reference '{token}': expected {expected}"))
            return text
        name, default = reference.group(1), reference.group(2)
        current = environ.get(name)
        if default is not None and not current:
            out.append(default)
        elif current is not None:
            out.append(current)
        else:
            problems.append(
                (
                    loc,
                    f"environment variable {name} is not set (use ${{env:{name}:-default}} "
                    "to give a default)",
                )
            )
            return text
    out.append(text[pos:])
    return "".join(out)
