"""Table-driven tests of the masking functions."""

from __future__ import annotations

import json

import pytest

from instrumentation.masking import (
    DEFAULT_MASKING,
    MASK,
    MaskingConfig,
    is_sensitive_key,
    looks_like_card_number,
    luhn_valid,
    mask_body,
    mask_data,
    mask_headers,
    mask_query_string,
    mask_text,
    mask_value,
)

VISA = "4111111111111111"  # a Luhn-valid test card number
VISA_BAD = "4111111111111112"  # same length, Luhn-invalid


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        (VISA, True),
        (VISA_BAD, False),
        ("79927398713", True),
        ("79927398710", False),
        ("5555555555554444", True),
        ("378282246310005", True),  # Amex, 15 digits
        ("", False),
        ("12a4", False),
    ],
)
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


@pytest.mark.parametrize(
    ("text", "card"),
    [
        (VISA, True),
        ("4111 1111 1111 1111", True),
        ("4111-1111-1111-1111", True),
        (VISA_BAD, False),
        ("79927398713", False),  # Luhn-valid but only 11 digits
        ("4" * 20, False),  # too long
        ("6011000990139424", True),
    ],
)
def test_looks_like_card_number(text: str, card: bool) -> None:
    assert looks_like_card_number(text) is card


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("password", True),
        ("Password", True),
        ("new_password", True),
        ("passwd", True),
        ("pwd", True),
        ("client_secret", True),
        ("access_token", True),
        ("refreshToken", True),
        ("api_key", True),
        ("apiKey", True),
        ("x-api-key", True),
        ("Authorization", True),
        ("card_number", True),
        ("cardNumber", True),
        ("card-no", True),
        ("cc_number", True),
        ("cvv", True),
        ("session_cookie", True),
        ("username", False),
        ("email", False),
        ("item", False),
        ("compass", False),
        ("passenger", False),
        ("card_type", False),
    ],
)
def test_sensitive_keys(key: str, sensitive: bool) -> None:
    assert is_sensitive_key(key) is sensitive


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain text", "plain text"),
        (f"card {VISA} charged", f"card {MASK} charged"),
        ("card 4111 1111 1111 1111.", f"card {MASK}."),
        (f"not a card {VISA_BAD}", f"not a card {VISA_BAD}"),
        ("order 12345 qty 3", "order 12345 qty 3"),
        ("mail bob.smith+x@example.co.uk now", f"mail {MASK} now"),
        ("two a@b.io, c@d.org", f"two {MASK}, {MASK}"),
        ("not an email: a@b", "not an email: a@b"),
        (f"id{VISA}", f"id{VISA}"),  # glued to a word: an identifier, not a card
    ],
)
def test_mask_value(text: str, expected: str) -> None:
    assert mask_value(text) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"password": "hunter2", "user": "bob"}, {"password": MASK, "user": "bob"}),
        ({"auth": {"token": {"nested": 1}}}, {"auth": {"token": MASK}}),
        ({"card_number": VISA}, {"card_number": MASK}),
        ({"note": f"pay with {VISA}"}, {"note": f"pay with {MASK}"}),
        ({"pan_like": int(VISA)}, {"pan_like": MASK}),
        ({"count": 4111}, {"count": 4111}),
        ({"flag": True, "none": None, "ratio": 0.5}, {"flag": True, "none": None, "ratio": 0.5}),
        (
            {"users": [{"email": "a@b.io", "api_key": "k"}, {"name": "c"}]},
            {"users": [{"email": MASK, "api_key": MASK}, {"name": "c"}]},
        ),
        ([["x@y.com"], [VISA, "ok"]], [[MASK], [MASK, "ok"]]),
        ({"Secret": ["a", "b"]}, {"Secret": MASK}),
        ({1: "one"}, {"1": "one"}),
    ],
)
def test_mask_data(data: object, expected: object) -> None:
    assert mask_data(data) == expected


def test_mask_data_depth_limit() -> None:
    deep: dict[str, object] = {"v": "x"}
    for _ in range(100):
        deep = {"d": deep}
    out = json.dumps(mask_data(deep))
    assert MASK in out


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"Authorization", b"Bearer abc")], {"authorization": MASK}),
        ([(b"cookie", b"sid=1")], {"cookie": MASK}),
        ([("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")], {"set-cookie": f"{MASK}, {MASK}"}),
        ([(b"X-API-Key", b"k")], {"x-api-key": MASK}),
        ([(b"Proxy-Authorization", b"Basic x")], {"proxy-authorization": MASK}),
        ([(b"accept", b"*/*")], {"accept": "*/*"}),
        ([(b"from", b"bob@example.com")], {"from": MASK}),
        ({"Content-Type": "application/json"}, {"content-type": "application/json"}),
        ([(b"x-custom", b"1"), (b"x-custom", b"2")], {"x-custom": "1, 2"}),
    ],
)
def test_mask_headers(headers: object, expected: dict[str, str]) -> None:
    assert mask_headers(headers) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ""),
        ("page=2&size=10", "page=2&size=10"),
        ("token=abc&page=2", "token=***&page=2"),
        ("q=bob@example.com", "q=***"),
        (f"n={VISA}", "n=***"),
    ],
)
def test_mask_query_string(query: str, expected: str) -> None:
    assert mask_query_string(query) == expected


@pytest.mark.parametrize(
    ("text", "absent", "present"),
    [
        ('{"password": "hunter2", "item": "x"', ["hunter2"], ['"item": "x"']),
        ('{"token":"t0k3n-value","n":1}', ["t0k3n-value"], ['"n":1']),
        ('{"card_number": 4111111111111111, "x": 1}', [VISA], ['"x": 1']),
        ('{"password": "unterminated', ["unterminated"], []),
        ("user=bob&password=hunter2&x=1", ["hunter2"], ["user=bob", "x=1"]),
        ("email bob@example.com", ["bob@example.com"], ["email"]),
    ],
)
def test_mask_text(text: str, absent: list[str], present: list[str]) -> None:
    out = mask_text(text)
    for value in absent:
        assert value not in out
    for value in present:
        assert value in out


@pytest.mark.parametrize(
    ("body", "content_type", "truncated", "expected"),
    [
        (b"", "application/json", False, ""),
        (
            b'{"password": "p", "items": [{"card": "4111 1111 1111 1111"}]}',
            "application/json; charset=utf-8",
            False,
            {"password": MASK, "items": [{"card": MASK}]},
        ),
        (b'{"a": 1}', "application/vnd.api+json", False, {"a": 1}),
        (
            b"password=p&user=bob",
            "application/x-www-form-urlencoded",
            False,
            {
                "password": MASK,
                "user": "bob",
            },
        ),
        (
            b'{"password": "p", "user": "b',
            "application/json",
            True,
            '{"password": "***", "user": "b',
        ),
        (b"\xff\xfe\x00", "application/octet-stream", False, "<3 bytes binary>"),
        (b"not json {", "application/json", False, "not json {"),
    ],
)
def test_mask_body(body: bytes, content_type: str, truncated: bool, expected: object) -> None:
    assert mask_body(body, content_type, truncated=truncated) == expected


def test_configurable_patterns() -> None:
    config = DEFAULT_MASKING.extended(
        headers=["X-Tenant-Secret"],
        key_patterns=[r"^ssn$"],
        value_patterns=[r"\b\d{3}-\d{2}-\d{4}\b"],
    )
    assert mask_headers([(b"x-tenant-secret", b"v")], config) == {"x-tenant-secret": MASK}
    assert mask_headers([(b"x-tenant-secret", b"v")]) == {"x-tenant-secret": "v"}
    assert mask_data({"ssn": "1", "other": "id 123-45-6789"}, config) == {
        "ssn": MASK,
        "other": f"id {MASK}",
    }
    assert mask_data({"ssn": "1"}) == {"ssn": "1"}


def test_switches_and_custom_mask() -> None:
    config = MaskingConfig(mask_cards=False, mask_emails=False, mask="[redacted]")
    assert mask_value(f"{VISA} a@b.io", config) == f"{VISA} a@b.io"
    assert mask_data({"password": "x"}, config) == {"password": "[redacted]"}
    no_keys = MaskingConfig(key_patterns=())
    assert mask_data({"password": "x"}, no_keys) == {"password": "x"}
