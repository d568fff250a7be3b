"""The ``redaction`` processor's configuration (docs/redaction.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from gateway.config.values import StrictModel
from gateway.processors.redaction_patterns import (
    BUILTIN_PATTERNS,
    MAX_VALUE_LENGTH,
    PatternName,
    ValueScanner,
    compile_blocked_value,
)
from gateway.redact import MASK

Scope = Literal["resource", "span", "event", "link", "log", "metric"]
SCOPES: tuple[Scope, ...] = ("resource", "span", "event", "link", "log", "metric")


def _regex(pattern: str) -> str:
    compile_blocked_value(pattern)
    return pattern


KeyGlob = Annotated[str, Field(min_length=1)]
BlockedValue = Annotated[str, Field(min_length=1), AfterValidator(_regex)]


class RedactionProcessorConfig(StrictModel):
    """The ``redaction`` processor: key allow/deny lists and value patterns (docs/redaction.md)."""

    allowed_keys: list[KeyGlob] | None = None
    blocked_keys: list[KeyGlob] = Field(default_factory=list)
    masked_keys: list[KeyGlob] = Field(default_factory=list)
    ignored_keys: list[KeyGlob] = Field(default_factory=list)
    patterns: list[PatternName] = Field(default_factory=lambda: list(BUILTIN_PATTERNS))
    blocked_values: list[BlockedValue] = Field(default_factory=list)
    mask: str = Field(default=MASK, min_length=1)
    max_value_length: int = Field(default=MAX_VALUE_LENGTH, gt=0)
    log_bodies: bool = True
    scopes: list[Scope] = Field(default_factory=lambda: list(SCOPES), min_length=1)
    summary: bool = False

    @field_validator("allowed_keys")
    @classmethod
    def _not_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("must not be empty (leave it out to keep every key)")
        return value

    @field_validator("mask")
    @classmethod
    def _mask_clean(cls, value: str, info: ValidationInfo) -> str:
        if any(c.isdigit() or c == "@" for c in value):
            raise ValueError("must not contain digits or '@' (it could form what is masked)")
        patterns, blocked = info.data.get("patterns"), info.data.get("blocked_values")
        if patterns is not None and blocked is not None:
            scanner = ValueScanner(patterns, [compile_blocked_value(p) for p in blocked], value)
            if scanner.scan(value) is not None:
                raise ValueError("must not itself be masked by the patterns or blocked_values")
        return value


def scanner_of(config: RedactionProcessorConfig) -> ValueScanner:
    """The value scanner of a validated config."""
    blocked = [compile_blocked_value(p) for p in config.blocked_values]
    return ValueScanner(config.patterns, blocked, config.mask, config.max_value_length)
