"""Configuration problems: each with the dotted path of its key, in words a user understands
(pydantic's errors translated; secret values never quoted)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import (
    BaseModel,
    ValidationError,
)

from gateway.config.env import Loc
from gateway.redact import is_secret_name, redact_text


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem: a dotted ``path`` (list indexes in brackets) and a human ``message``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ConfigError(Exception):
    """Every problem found in a configuration; ``str()`` gives one ``path: message`` per line.

    Messages may quote the value that was wrong: credentials in them (a URL's password, a
    token in its query) are masked here, so check-config and run never print them.
    """

    def __init__(self, errors: list[ConfigIssue]) -> None:
        errors = [ConfigIssue(i.path, redact_text(i.message)) for i in errors]
        super().__init__("\n".join(str(issue) for issue in errors))
        self.errors = errors


_MESSAGES = {
    "missing": "is required", "extra_forbidden": "unknown key", "string_type": "must be a string",
    "bool_type": "must be true or false", "bool_parsing": "must be true or false",
    "int_type": "must be a whole number", "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number", "float_type": "must be a number",
    "float_parsing": "must be a number", "dict_type": "must be a mapping",
    "model_type": "must be a mapping", "list_type": "must be a list",
    "greater_than": "must be greater than {gt}", "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}", "less_than_equal": "must be at most {le}",
    "literal_error": "must be {expected}",
}  # fmt: skip


def path_of(loc: Loc) -> str:
    """``a.b[0].c`` from a location."""
    parts = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc if p != "[key]"]
    return "".join(parts).removeprefix(".")


def _shown(value: Any) -> str:
    if isinstance(value, dict | list):
        return "a mapping" if isinstance(value, dict) else "a list"
    if value is None or isinstance(value, bool):
        return "null" if value is None else str(value).lower()
    text = repr(redact_text(value) if isinstance(value, str) else value)  # before truncating
    return text if len(text) <= 40 else text[:37] + "..."


def describe(error: Any) -> str:
    """A pydantic error in words a user understands; never quotes a secret setting's value
    (a header such as ``Authorization``, anything named like a token, key or password)."""
    kind, ctx = error["type"], error.get("ctx") or {}
    loc = [str(part) for part in error.get("loc", ())]
    secret = any(is_secret_name(part) for part in loc)
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind in ("too_short", "string_too_short") and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind in ("missing", "extra_forbidden"):
        return _MESSAGES[kind]
    if kind in _MESSAGES:
        ctx = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in ctx.items()}
        shown = "a hidden value" if secret else _shown(error.get("input"))
        return _MESSAGES[kind].format(**ctx) + f" (got {shown})"
    return str(error["msg"])[:1].lower() + str(error["msg"])[1:]


def validate(model: type[BaseModel], data: Any, loc: Loc, issues: list[ConfigIssue]) -> Any:
    """The validated model, or ``None`` after adding its problems to ``issues``."""
    try:
        return model.model_validate({} if data is None else data)
    except ValidationError as exc:
        issues.extend(ConfigIssue(path_of((*loc, *e["loc"])), describe(e)) for e in exc.errors())
        return None
