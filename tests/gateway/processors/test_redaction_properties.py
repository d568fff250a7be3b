"""Properties of the redaction processor on generated text and values: it never raises, what
comes out holds no card number and no e-mail address (by checkers written here, apart from the
processor's own code), and masking again changes nothing."""

from __future__ import annotations

import re
from typing import Any

from google.protobuf.json_format import MessageToDict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.otlp.batch import Signal
from gateway.processors.redaction_patterns import ValueScanner, _long_run_windows, _windows
from tests.gateway.processors.redaction_helpers import logs, processor, run, traces

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


def luhn(digits: str) -> bool:
    """The textbook Luhn check: double every second digit from the right."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def contains_card(text: str) -> bool:
    """Whether up to 8 whole digit groups (words made of digits only) joined by single spaces
    or dashes anywhere in ``text`` form a 13-19 digit number starting with 2-6 that passes
    the Luhn check (tries every window)."""
    words = re.finditer(r"[0-9A-Za-z]+", text)
    groups = [(m.start(), m.end()) for m in words if m.group().isdigit()]
    for i in range(len(groups)):
        digits = ""
        for j in range(i, min(len(groups), i + 8)):
            if j > i and text[groups[j - 1][1] : groups[j][0]] not in (" ", "-"):
                break
            digits += text[groups[j][0] : groups[j][1]]
            if len(digits) > 19:
                break
            if len(digits) >= 13 and digits[0] in "23456" and luhn(digits):
                return True
    return False


@st.composite
def cards(draw: st.DrawFn) -> str:
    """A valid card number, as a service would print it (groups of 4, or any grouping)."""
    length = draw(st.integers(13, 19))
    body = draw(st.sampled_from("23456")) + draw(
        st.text("0123456789", min_size=length - 2, max_size=length - 2)
    )
    digits = next(body + d for d in "0123456789" if luhn(body + d))
    style = draw(st.sampled_from(["plain", "spaces", "dashes", "any"]))
    if style == "plain":
        return digits
    if style in ("spaces", "dashes"):
        sep = " " if style == "spaces" else "-"
        return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))
    cuts = draw(st.sets(st.integers(1, length - 1), max_size=7))  # at most 8 groups
    seps = [draw(st.sampled_from(" -")) if i in cuts else "" for i in range(1, length)]
    return digits[0] + "".join(s + d for s, d in zip(seps, digits[1:], strict=True))


emails = st.from_regex(
    r"[a-z0-9._%+-]{1,10}@[a-z0-9-]{1,8}(\.[a-z0-9-]{1,8}){0,2}\.[a-z]{2,6}", fullmatch=True
)
fragments = st.one_of(
    st.text("0123456789 -@.:=abxyzAB_/'\"", max_size=24),
    cards(),
    emails,
    st.sampled_from(
        ["Bearer ", "password=", "pwd: ", '"secret": "', "://u:", "eyJ", "-", " ", "@", "1"]
    ),
    st.text(max_size=12),
)
texts = st.lists(fragments, max_size=8).map("".join)


def scanner() -> ValueScanner:
    return ValueScanner(["card", "email", "bearer", "password"], [], "***")


@PROPERTY
@given(texts)
def test_no_card_or_email_survives_and_masking_again_changes_nothing(text: str) -> None:
    out = scanner().scan(text)
    result = text if out is None else out
    assert not contains_card(result), result
    assert EMAIL.search(result) is None, result
    assert scanner().scan(result) is None


@PROPERTY
@given(st.text())
def test_any_text_is_handled(text: str) -> None:
    out = scanner().scan(text)
    assert out is None or (isinstance(out, str) and out != text)


@PROPERTY
@given(st.lists(cards(), min_size=1, max_size=3), st.sampled_from([" ", ", ", " and ", "/"]))
def test_no_digit_of_any_card_is_left(numbers: list[str], sep: str) -> None:
    out = scanner().scan(sep.join(numbers))
    assert out is not None and not any(c.isdigit() for c in out), out
    if sep != " ":  # a single space may join two cards into one run of groups
        assert out == sep.join(["***"] * len(numbers))


values = st.recursive(
    st.one_of(
        texts,
        st.integers(-(2**63), 2**63 - 1),
        st.booleans(),
        st.floats(allow_nan=False),
        st.binary(),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["password", "note", "email", "x"]), inner, max_size=4),
    ),
    max_leaves=12,
)


def strings_in(value: Any) -> list[str]:
    """Every ``stringValue`` of an OTLP message as MessageToDict shows it."""
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    if not isinstance(value, dict):
        return []
    found = [v for k, v in value.items() if k == "stringValue"]
    return found + [s for k, v in value.items() if k != "stringValue" for s in strings_in(v)]


@PROPERTY
@given(st.dictionaries(st.sampled_from(["a", "b.password", "c"]), values, max_size=4), values)
def test_processor_never_raises_and_keeps_bytes_consistent(
    attrs: dict[str, Any], body: Any
) -> None:
    proc = processor()
    span_batch = run(proc, Signal.TRACES, traces(attrs, event=attrs))
    log_batch = run(proc, Signal.LOGS, logs(body, attrs))
    for batch in (span_batch, log_batch):
        dumped = MessageToDict(batch.request)
        for text in strings_in(dumped):
            assert EMAIL.search(text) is None and not contains_card(text), text


digit_runs = st.lists(
    st.text("0123456789", min_size=1, max_size=6), min_size=1, max_size=40
).flatmap(
    lambda groups: st.lists(
        st.sampled_from(" -"), min_size=len(groups) - 1, max_size=len(groups) - 1
    ).map(lambda seps: groups[0] + "".join(s + g for s, g in zip(seps, groups[1:], strict=True)))
)


@PROPERTY
@given(digit_runs)
def test_the_long_run_card_search_finds_what_the_short_one_does(run: str) -> None:
    groups = [(m.start(), m.end()) for m in re.finditer(r"[0-9]+", run)]
    assert list(_long_run_windows(run, groups)) == list(_windows(run, groups))
