"""The redaction processor's value patterns: what each rule masks, and what it leaves alone.

Card numbers are the test numbers the card networks publish for integration tests (Stripe's
and PayPal's lists: https://docs.stripe.com/testing#cards); every other number is made up.
"""

from __future__ import annotations

import re
import time

import pytest

from gateway.processors.redaction_keys import Globs, glob_match
from gateway.processors.redaction_patterns import (
    ValueScanner,
    card_spans,
    compile_blocked_value,
    is_card_number,
    is_secret_key,
    luhn_valid,
)

ALL = ("card", "email", "bearer", "password")
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


def with_check_digit(body: str) -> str:
    """``body`` plus the digit that makes it pass the Luhn check."""
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


def scanner(*patterns: str, blocked: tuple[str, ...] = (), mask: str = "***") -> ValueScanner:
    return ValueScanner(patterns or ALL, [re.compile(p) for p in blocked], mask)


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("4111111111111111", True),
        ("4111111111111112", False),
        ("378282246310005", True),  # Amex, 15 digits
        ("6011111111111117", True),  # Discover
        ("0000000000000", True),  # Luhn alone says nothing about the first digit
        ("79927398713", True),  # the example of ISO/IEC 7812-1
        ("79927398710", False),
    ],
)
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


@pytest.mark.parametrize(
    ("digits", "card"),
    [
        ("4111111111111111", True),  # Visa
        ("4222222222222", True),  # Visa, 13 digits
        ("5555555555554444", True),  # Mastercard
        ("2223003122003222", True),  # Mastercard 2-series
        ("378282246310005", True),  # Amex
        ("30569309025904", True),  # Diners, 14 digits
        ("3530111333300000", True),  # JCB
        ("6011111111111117", True),  # Discover
        ("6205500000000000004", True),  # UnionPay, 19 digits
        ("4111111111111112", False),  # Luhn fails
        (with_check_digit("171720013450733608"), False),  # a nanosecond timestamp: starts with 1
        (with_check_digit("171720013450"), False),  # a millisecond timestamp
        (with_check_digit("7" * 15), False),  # 7, 8, 9 and 0 are not payment card industries
        (with_check_digit("4" * 11), False),  # 12 digits: too short
        (with_check_digit("4" * 19), False),  # 20 digits: too long
    ],
)
def test_what_is_a_card_number(digits: str, card: bool) -> None:
    assert is_card_number(digits) is card


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("card 4111 1111 1111 1111 charged", "card *** charged"),
        ("card 4111-1111-1111-1111.", "card ***."),
        ("pan=4111111111111111&x=1", "pan=***&x=1"),
        ("amex 3782 822463 10005 ok", "amex *** ok"),
        ("two 4111111111111111 5555555555554444", "two *** ***"),
        # Only the groups that form the card go, the rest of the run stays.
        ("ref 12 4111 1111 1111 1111 99", "ref 12 *** 99"),
        ("card_4111111111111111", "card_***"),
        ("(4111111111111111)", "(***)"),
    ],
)
def test_card_numbers_are_masked_and_only_them(text: str, expected: str) -> None:
    assert scanner("card").scan(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 4111111111111112 shipped",  # Luhn fails
        f"at {with_check_digit('171720013450733608')} ns",  # timestamp (starts with 1)
        "instance 58395085089258967152106559065790661117",  # a longer number is no card
        f"id {with_check_digit('4111111111111111111')}",  # 20 digits with a valid check
        "phone +44 7700 900123",
        "4111  1111  1111  1111",  # double spaces split the run into short numbers
        "v1.2.3 build 20240601 at 12:30",
        "d053df24b42628609243557404df3e88021d3586ad408507823fd4c3996c4444",  # a container id
        "trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",
        "card4111111111111111",  # glued to a word: a token, not a number
        "4111111111111111x",
    ],
)
def test_numbers_that_are_not_cards_stay(text: str) -> None:
    assert scanner().scan(text) is None


def test_card_spans_take_whole_groups_longest_first() -> None:
    run = "1 4111 1111 1111 1111 9"
    assert [run[s:e] for s, e in card_spans(run)] == ["4111 1111 1111 1111"]
    assert card_spans("4111111111111112") == []
    assert card_spans("5" + "4111111111111111") == []  # one group: the whole run or nothing
    assert card_spans("4111 1111 1111 1111 5") == [(0, 19)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("receipt to bob.smith+tag@example.co.uk today", "receipt to *** today"),
        ("<ann@shop.example>", "<***>"),
        ("a@b.io and c@d.io", "*** and ***"),
    ],
)
def test_email_addresses_are_masked(text: str, expected: str) -> None:
    assert scanner("email").scan(text) == expected


@pytest.mark.parametrize("text", ["root@localhost", "@handle on chat", "a @ b.com", "x@1.2"])
def test_what_is_not_an_email_address_stays(text: str) -> None:
    assert scanner("email").scan(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc123def456ghi", "Authorization: Bearer ***"),
        ("authorization: bearer AbCdEfGhIjKlMnOpQrStUv", "authorization: bearer ***"),
        (f"token {JWT} expired", "token *** expired"),
        (f"Bearer {JWT}", "Bearer ***"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic ***"),
        ("Basic YTpi", "Basic ***"),  # the shortest thing the rule masks: a:b
    ],
)
def test_bearer_tokens_basic_credentials_and_jwts_are_masked(text: str, expected: str) -> None:
    assert scanner("bearer").scan(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Bearer token expired",  # too short for a token
        "Bearer authentication is required",  # a word, not a token
        "Basic authentication failed",  # does not decode to user:password
        "basic plan selected",
        "eyJ is how JSON starts in base64",
    ],
)
def test_words_after_bearer_and_basic_stay(text: str) -> None:
    assert scanner("bearer").scan(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("login failed: password=hunter2&user=bob", "login failed: password=***&user=bob"),
        ("pwd: s3cr3t next", "pwd: *** next"),
        (
            '{"password": "p@ss \\"quoted\\" word", "user": "bob"}',
            '{"password": "***", "user": "bob"}',
        ),
        ("{'api_key': 'abc123', 'n': 1}", "{'api_key': '***', 'n': 1}"),
        ("GET /cb?code=1&access_token=xyz&state=2", "GET /cb?code=1&access_token=***&state=2"),
        ("client_secret = hush", "client_secret = ***"),
        ("userPassword=hunter2", "userPassword=***"),
        ('"cvv": "123"', '"cvv": "***"'),
        (
            "dsn postgres://app:pa@ss@db.internal:5432/shop",
            "dsn postgres://app:***@db.internal:5432/shop",
        ),
        ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
    ],
)
def test_passwords_in_values_are_masked_and_only_the_value(text: str, expected: str) -> None:
    assert scanner("password").scan(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "password_hash=ab12",  # the key goes on after the word
        "passwordless=true",
        "secretary=Jane",
        "tokens: 42 used",
        "password reset requested",  # no value
        "password=***",  # masked already (service-side masking), counted once
        "https://example.com:8443/path",  # no userinfo
        "mailto:bob@example.com",
    ],
)
def test_what_only_looks_like_a_password_stays(text: str) -> None:
    assert scanner("password").scan(text) is None


def test_a_string_with_everything_keeps_what_is_not_secret() -> None:
    s = scanner()
    text = (
        "user bob@example.com paid with 4111 1111 1111 1111 (order 4111111111111112), "
        f"headers Authorization: Bearer {JWT} password=hunter2"
    )
    assert s.scan(text) == (
        "user *** paid with *** (order 4111111111111112), "
        "headers Authorization: Bearer *** password=***"
    )
    assert s.masked == {"email": 1, "card": 1, "bearer": 1, "password": 1}
    assert s.total == 4


def test_only_the_enabled_patterns_apply() -> None:
    text = "bob@example.com 4111111111111111 password=x"
    assert scanner("email").scan(text) == "*** 4111111111111111 password=x"
    assert scanner("card").scan(text) == "bob@example.com *** password=x"
    assert ValueScanner([], [], "***").active is False


def test_blocked_values_mask_each_match_with_the_mask() -> None:
    s = scanner("card", blocked=(r"\bSSN-\d{3}-\d{2}-\d{4}\b", r"(?=x)"), mask="[REDACTED]")
    assert s.scan("ids SSN-123-45-6789 and SSN-987-65-4321, x") == (
        "ids [REDACTED] and [REDACTED], x"  # the zero-width pattern masks nothing
    )
    assert s.masked == {"blocked_value": 2}
    assert s.scan("password=[REDACTED]") is None


def test_clean_strings_are_remembered_and_short_ones_skipped() -> None:
    s = scanner()
    text = "GET /api/checkout 200"
    assert s.scan(text) is None
    assert text in s.clean
    assert s.scan("pw=") is None and "pw=" not in s.clean  # shorter than any match
    assert s.scan("Bearer abcdefgh12345678") == "Bearer ***"
    assert "Bearer abcdefgh12345678" not in s.clean  # never a string that was masked


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("(unclosed", "invalid regular expression: missing ), unterminated subpattern"),
        ("a*", "must not match the empty string"),
    ],
)
def test_blocked_value_regexes_are_checked(pattern: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        compile_blocked_value(pattern)


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "db.password",
        "user_passwd",
        "userPassword",
        "client_secret",
        "oauth.access_token",
        "x-api-key",
        "http.request.header.authorization",
        "http.request.header.proxy-authorization",
        "http.response.header.set-cookie",
        "aws.credentials",
        "payment.cvv",
        "PWD",
    ],
)
def test_keys_named_like_secrets(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "gen_ai.usage.input_tokens",
        "llm.token_count.prompt",
        "gen_ai.token.type",
        "messaging.kafka.message.key",
        "password.reset.requested",
        "session.id",
        "http.request.method",
    ],
)
def test_keys_that_only_contain_a_secret_word(key: str) -> None:
    assert not is_secret_key(key)


@pytest.mark.parametrize(
    ("glob", "key", "matches"),
    [
        ("credit_card*", "credit_card_number", True),
        ("credit_card*", "my.credit_card", False),
        ("*.password", "db.password", True),
        ("http.request.header.?-api-key", "http.request.header.x-api-key", True),
        ("a*b*c", "aXbYc", True),
        ("a*b*c", "aXbYcZ", False),
        ("*", "", True),
        ("?", "", False),
    ],
)
def test_glob_match(glob: str, key: str, matches: bool) -> None:
    assert glob_match(glob, key) is matches


def test_globs_ignore_case_and_stay_linear_on_hostile_keys() -> None:
    globs = Globs(["Authorization", "*A*A*A*A*B"])
    assert globs.match("AUTHORIZATION") and globs.match("authorization")
    assert not globs.match("a" * 20_000)  # a backtracking regex would take minutes


N = 200_000  # a quadratic scan of this takes minutes; a linear one milliseconds


@pytest.mark.parametrize(
    "text",
    [
        "a" * N + "@",
        "a@" * (N // 2),
        "x@" + "a." * (N // 2) + "1",
        "eyJ" * (N // 3),
        'pwd: "' * (N // 6),
        "Bearer " * (N // 7),
        "://a:" + "b:" * (N // 2),
        "1 " * (N // 2),
        "a" * N + "password",
    ],
    ids=["run@", "a@", "labels", "eyJ", "quotes", "bearer", "userinfo", "digits", "key"],
)
def test_hostile_strings_cost_linear_time(text: str) -> None:
    started = time.process_time()
    scanner().scan(text)
    assert time.process_time() - started < 2.0


def test_strings_longer_than_the_limit_go_whole_unscanned() -> None:
    s = ValueScanner(ALL, [], "***", max_length=100)
    assert s.scan("fine " * 20) is None
    assert s.scan("fine " * 20 + "!") == "***"
    assert s.masked == {"too_long": 1}
