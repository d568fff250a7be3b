"""The redaction processor's configuration: defaults, and each error with its path."""

from __future__ import annotations

import pytest
import yaml

from gateway.config.loading import parse_config
from gateway.processors.redaction_config import RedactionProcessorConfig
from tests.gateway.config.helpers import BASE, issues_of, patched

BAD_CASES: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "every list and value checked",
        patched(
            (
                "processors.redaction",
                {
                    "blocked_values": [r"SSN-\d+", "(unclosed", "a*"],
                    "patterns": ["card", "phone"],
                    "scopes": ["span", "body"],
                    "allowed_keys": [],
                    "blocked_keys": [""],
                    "mask": "X1",
                    "colour": "red",
                },
            )
        ),
        [
            (
                "processors.redaction.allowed_keys",
                "must not be empty (leave it out to keep every key)",
            ),
            ("processors.redaction.blocked_keys[0]", "must not be empty"),
            (
                "processors.redaction.patterns[1]",
                "must be 'card', 'email', 'bearer' or 'password' (got 'phone')",
            ),
            (
                "processors.redaction.blocked_values[1]",
                "invalid regular expression: missing ), unterminated subpattern at position 0",
            ),
            ("processors.redaction.blocked_values[2]", "must not match the empty string"),
            (
                "processors.redaction.mask",
                "must not contain digits or '@' (it could form what is masked)",
            ),
            (
                "processors.redaction.scopes[1]",
                "must be 'resource', 'span', 'event', 'link', 'log' or 'metric' (got 'body')",
            ),
            ("processors.redaction.colour", "unknown key"),
        ],
    ),
    (
        "a mask the patterns would mask",
        patched(("processors.redaction/a", {"mask": "password=x"})),
        [
            (
                "processors.redaction/a.mask",
                "must not itself be masked by the patterns or blocked_values",
            )
        ],
    ),
    (
        "a mask a blocked value would mask",
        patched(("processors.redaction", {"mask": "[hidden]", "blocked_values": ["hidden"]})),
        [
            (
                "processors.redaction.mask",
                "must not itself be masked by the patterns or blocked_values",
            )
        ],
    ),
    (
        "no scopes",
        patched(("processors.redaction", {"scopes": []})),
        [("processors.redaction.scopes", "must not be empty")],
    ),
    (
        "wrong types",
        patched(
            ("processors.redaction", {"summary": 3, "patterns": "card", "max_value_length": 0})
        ),
        [
            ("processors.redaction.summary", "must be true or false (got 3)"),
            ("processors.redaction.patterns", "must be a list (got 'card')"),
            ("processors.redaction.max_value_length", "must be greater than 0 (got 0)"),
        ],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [case[1:] for case in BAD_CASES], ids=[case[0] for case in BAD_CASES]
)
def test_bad_config_reports_exact_paths(text: str, expected: list[tuple[str, str]]) -> None:
    assert sorted(issues_of(text)) == sorted(expected)


def test_defaults_scan_everything_with_every_pattern() -> None:
    config = RedactionProcessorConfig()
    assert config.patterns == ["card", "email", "bearer", "password"]
    assert config.scopes == ["resource", "span", "event", "link", "log", "metric"]
    assert (config.allowed_keys, config.mask, config.log_bodies, config.summary) == (
        None,
        "***",
        True,
        False,
    )
    assert config.max_value_length == 256 * 1024


def test_a_redaction_processor_in_every_pipeline_parses() -> None:
    doc = {
        **BASE,
        "processors": {
            "redaction": {},
            "redaction/strict": {
                "allowed_keys": ["service.name", "http.*"],
                "blocked_values": [r"\bSSN-\d{3}-\d{2}-\d{4}\b"],
                "mask": "[REDACTED]",
            },
        },
        "service": {
            "pipelines": {
                signal: {
                    "receivers": ["otlp"],
                    "processors": ["redaction", "redaction/strict"],
                    "exporters": ["file"],
                }
                for signal in ("traces", "metrics", "logs")
            }
        },
    }
    config = parse_config(yaml.safe_dump(doc), environ={})
    strict = config.processors["redaction/strict"]
    assert isinstance(strict, RedactionProcessorConfig)
    assert strict.mask == "[REDACTED]" and strict.allowed_keys == ["service.name", "http.*"]
