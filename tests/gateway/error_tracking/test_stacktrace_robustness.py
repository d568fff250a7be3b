"""Language detection, fallbacks, limits, and no input raising or taking long."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.error_tracking.fingerprint import fingerprint, normalise_message, normalise_path
from gateway.error_tracking.stacktrace import (
    MAX_FRAMES,
    MAX_TEXT,
    Frame,
    ParsedStack,
    parse_stacktrace,
)
from tests.gateway.error_tracking.corpus import BUGS, at_lines
from tests.gateway.error_tracking.corpus_node_go_dotnet import BUGS as MORE_BUGS

LANGUAGES = {"python", "java", "node", "go", "dotnet", "unknown"}
SAMPLE = {
    "python": BUGS["py-bad-price"][0].stacktrace,
    "java": BUGS["java-signup-caused-by"][2].stacktrace,
    "node": MORE_BUGS["node-cart-read"][1].stacktrace,
    "go": MORE_BUGS["go-order-nil"][0].stacktrace,
    "dotnet": MORE_BUGS["dotnet-order-missing"][1].stacktrace,
}


@pytest.mark.parametrize("language", sorted(SAMPLE))
@pytest.mark.parametrize("hint", [None, "", "cpp", "rust", "PHP"])
def test_the_language_is_detected_when_the_hint_does_not_help(language: str, hint: Any) -> None:
    assert parse_stacktrace(SAMPLE[language], hint).language == language


@pytest.mark.parametrize("language", sorted(SAMPLE))
def test_a_wrong_hint_falls_back_to_detection(language: str) -> None:
    for hint in ("python", "java", "nodejs", "go", "dotnet"):
        assert parse_stacktrace(SAMPLE[language], hint).language == language


@pytest.mark.parametrize(
    ("hint", "language"),
    [("  Python ", "python"), ("JAVA", "java"), ("webjs", "node"), ("golang", "go")],
)
def test_hints_are_read_loosely(hint: str, language: str) -> None:
    assert parse_stacktrace(SAMPLE[language], hint).language == language


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n",
        "ValueError: something broke",
        "Exception in thread main",
        "at nothing",
        "goroutine 1 [running]:\n",
        "   at ",
        "\tat (",
        '  File "',
        "\x00\x01\x02 \udcff \u2028",
    ],
)
def test_unrecognised_text_is_unknown(text: str) -> None:
    assert parse_stacktrace(text) == ParsedStack("unknown", ())
    assert parse_stacktrace(text, "python") == ParsedStack("unknown", ())


def test_text_that_is_not_a_string_is_unknown() -> None:
    bad: Any = None
    hint: Any = 12
    assert parse_stacktrace(bad, hint) == ParsedStack("unknown", ())
    assert parse_stacktrace(BUGS["py-bad-price"][0].stacktrace, hint).language == "python"


def test_only_the_first_64_kib_are_read() -> None:
    frame = at_lines("com.shop.A.run(A.java:1)")
    padding = "x" * (MAX_TEXT - len(frame) + 2) + "\n"
    assert parse_stacktrace(frame + padding + frame).frames == (
        Frame("A.java", "run", 1, "com.shop.A", True),
    )
    assert parse_stacktrace(padding + frame) == ParsedStack("unknown", ())  # cut mid-frame
    assert parse_stacktrace(padding + "\n" + frame) == ParsedStack("unknown", ())


def test_at_most_200_frames_are_kept_innermost_first() -> None:
    java = "java.lang.StackOverflowError\n" + at_lines(
        *(f"com.shop.Tree.walk{n}(Tree.java:{n})" for n in range(1, 501))
    )
    frames = parse_stacktrace(java).frames
    assert len(frames) == MAX_FRAMES
    assert (frames[0].line, frames[-1].line) == (1, MAX_FRAMES)
    python = "Traceback (most recent call last):\n" + "".join(
        f'  File "/app/tree.py", line {n}, in walk\n' for n in range(500, 0, -1)
    )
    frames = parse_stacktrace(python).frames
    assert len(frames) == MAX_FRAMES
    assert (frames[0].line, frames[-1].line) == (1, MAX_FRAMES)


def test_lines_over_4_kib_are_skipped() -> None:
    long_frame = f"\tat com.shop.A.{'x' * 5000}(A.java:1)\n"
    assert parse_stacktrace(long_frame + at_lines("com.shop.B.run(B.java:2)")).frames == (
        Frame("B.java", "run", 2, "com.shop.B", True),
    )


PATHOLOGICAL = [
    "\tat " + "a(" * 500_000,
    "    at " + "f (" * 350_000,
    '  File "' + "x" * 1_000_000,
    "1:" * 500_000,
    ":" * 1_000_000,
    "(" * 500_000 + ")" * 500_000,
    ("\tat " + "a." * 2000 + "(" + "b:" * 40 + "\n") * 250,
    ("    at " + "x (" * 1300 + ")\n") * 250,
    ("main." + "f(" * 2000 + ")\n\t" + "/a:" * 1300 + "\n") * 120,
    ("   at A." + "<" * 2000 + ">d__" * 400 + ".MoveNext()\n") * 250,
    "Traceback (most recent call last):\n" * 30_000,
    "@" * 1_000_000,
    "a" * 1_000_000,
    "'" * 1_000_000,
    "$$" * 500_000,
    "0x" * 500_000,
    "1." * 500_000,
    "a@b." * 250_000,
    "::1" * 333_333,
    "http://" + "a?b=" * 250_000,
    "-0a" * 333_333,
]


@pytest.mark.parametrize("text", PATHOLOGICAL, ids=range(len(PATHOLOGICAL)))
def test_pathological_megabyte_inputs_finish_quickly(text: str) -> None:
    started = time.perf_counter()
    for hint in (None, "python", "java", "nodejs", "go", "dotnet"):
        parse_stacktrace(text, hint)
    normalise_message(text)
    normalise_path(text)
    frame = Frame(text, text, None, text, True)
    for language in ("python", "java", "node", "go", "dotnet"):
        fingerprint(text, text, ParsedStack(language, (frame,)))
    assert time.perf_counter() - started < 2.0


TRACE_LINES = [
    line
    for sample in (*SAMPLE.values(), MORE_BUGS["node-browser-bundle"][0].stacktrace)
    for line in sample.splitlines()
] + ["", "\t", " ---> ", "<---", "goroutine 9 [select]:", "  + ", "    | ", "\t... 3 more"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=3000), st.one_of(st.none(), st.text(max_size=10)))
def test_random_text_never_raises(text: str, hint: str | None) -> None:
    _check_invariants(parse_stacktrace(text, hint))
    assert len(normalise_message(text)) <= 500


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(TRACE_LINES),
            st.sampled_from(TRACE_LINES).map(lambda line: line[: len(line) // 2]),
            st.text(alphabet=" \t:()<>.$/\\@+-0x19aAzZ_|'\"", max_size=40),
        ),
        max_size=60,
    ),
    st.sampled_from([None, "python", "java", "nodejs", "go", "dotnet", "??"]),
)
def test_shuffled_and_broken_trace_lines_never_raise(lines: list[str], hint: str | None) -> None:
    stack = parse_stacktrace("\n".join(lines), hint)
    _check_invariants(stack)
    result = fingerprint("E", "\n".join(lines), stack)
    assert len(result.id) == 16


def _check_invariants(stack: ParsedStack) -> None:
    assert stack.language in LANGUAGES
    assert len(stack.frames) <= MAX_FRAMES
    assert (stack.language == "unknown") == (not stack.frames)
    for frame in stack.frames:
        assert frame.line is None or 0 <= frame.line < 10**9
