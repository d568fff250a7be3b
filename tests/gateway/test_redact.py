"""Credentials are masked in URLs, headers, free text and log lines."""

from __future__ import annotations

import logging

import pytest

from gateway.redact import (
    RedactingFormatter,
    is_secret_name,
    redact_headers,
    redact_text,
    redact_url,
)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://alice:S3cret@collector:4318/v1", "http://alice:***@collector:4318/v1"),
        ("https://t0ken@collector", "https://***@collector"),
        ("https://alice:@collector", "https://alice:***@collector"),
        ("http://alice:p@ss;w,rd@collector/x", "http://alice:***@collector/x"),
        ("http://h/push?api_key=k1&tenant=a", "http://h/push?api_key=***&tenant=a"),
        (
            "http://h/push?X-Amz-Signature=abc&X-Amz-Date=1",
            "http://h/push?X-Amz-Signature=***&X-Amz-Date=1",
        ),
        ("http://collector:4318/v1/traces", "http://collector:4318/v1/traces"),
        ("collector:4317", "collector:4317"),
        ("alice:S3cret@collector:4317", "alice:***@collector:4317"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "OTLP/HTTP http://alice:S3cret@127.0.0.1:9/v1/traces: ConnectError",
            "OTLP/HTTP http://alice:***@127.0.0.1:9/v1/traces: ConnectError",
        ),
        (
            "'alice:S3cret@collector' in 'alice:S3cret@collector:x' is not valid",
            "'alice:***@collector' in 'alice:***@collector:x' is not valid",
        ),
        (
            'POST http://***@h/x?token=abc "HTTP/1.1 500"',
            'POST http://***@h/x?token=*** "HTTP/1.1 500"',
        ),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", "Authorization: Bearer ***"),
        ("sent Basic YWxpY2U6czNjcmV0", "sent Basic ***"),
        ("write to bob@example.com at 10:30", "write to bob@example.com at 10:30"),
        ("http://h/v1/traces?signal=traces", "http://h/v1/traces?signal=traces"),
        ("queue is full (100/100 items)", "queue is full (100/100 items)"),
    ],
)
def test_redact_text(text: str, shown: str) -> None:
    assert redact_text(text) == shown


def test_redact_headers_masks_only_secret_looking_names() -> None:
    headers = {"Authorization": "Bearer x", "X-API-Key": "k", "X-Scope-OrgID": "tenant-1"}
    assert redact_headers(headers) == {
        "Authorization": "***",
        "X-API-Key": "***",
        "X-Scope-OrgID": "tenant-1",
    }
    assert is_secret_name("x-goog-api-key") and is_secret_name("session_id")
    assert not is_secret_name("content-type") and not is_secret_name("signal")


def test_log_lines_are_redacted_whoever_wrote_them() -> None:
    formatter = RedactingFormatter(logging.Formatter("%(name)s: %(message)s"))
    url = "http://alice:S3cret@h:1/v1/logs"
    record = logging.LogRecord(
        "httpx", logging.INFO, __file__, 1, "HTTP Request: POST %s", (url,), None
    )
    assert formatter.format(record) == "httpx: HTTP Request: POST http://alice:***@h:1/v1/logs"
    try:
        raise ValueError(f"cannot reach {url}")
    except ValueError as exc:
        failed = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "failed", (), (type(exc), exc, exc.__traceback__)
        )
    text = formatter.format(failed)
    assert "ValueError: cannot reach http://alice:***@h:1/v1/logs" in text
    assert "S3cret" not in text
