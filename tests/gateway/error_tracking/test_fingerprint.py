"""Fingerprints group every variant of one bug together and different bugs apart."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.error_tracking.fingerprint import Fingerprint, fingerprint
from gateway.error_tracking.stacktrace import Frame, Language, ParsedStack, parse_stacktrace
from tests.gateway.error_tracking.corpus import BUGS as PY_JAVA_BUGS
from tests.gateway.error_tracking.corpus import Sample
from tests.gateway.error_tracking.corpus_node_go_dotnet import BUGS as OTHER_BUGS

BUGS = {**PY_JAVA_BUGS, **OTHER_BUGS}


def _fingerprint(sample: Sample) -> Fingerprint:
    return fingerprint(
        sample.exc_type, sample.message, parse_stacktrace(sample.stacktrace, sample.language)
    )


def test_the_corpus_covers_every_language() -> None:
    languages = [bug.split("-")[0] for bug in BUGS]
    for prefix, bugs in (("py", 4), ("java", 4), ("node", 4), ("go", 2), ("dotnet", 2)):
        assert languages.count(prefix) >= bugs
    for prefix in ("py", "java", "node"):
        assert all(len(v) >= 2 for k, v in BUGS.items() if k.startswith(prefix))
    assert sum(len(samples) for samples in BUGS.values()) >= 40


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_every_variant_of_a_bug_shares_one_stack_fingerprint(bug: str) -> None:
    prints = [_fingerprint(sample) for sample in BUGS[bug]]
    assert {p.basis for p in prints} == {"stack"}
    assert len({p.id for p in prints}) == 1, [p.culprit for p in prints]
    assert len({p.culprit for p in prints}) == 1


def test_different_bugs_never_share_a_fingerprint() -> None:
    ids = {bug: _fingerprint(samples[0]).id for bug, samples in BUGS.items()}
    clashes = [(a, b) for a, b in itertools.combinations(ids, 2) if ids[a] == ids[b]]
    assert clashes == []


@pytest.mark.parametrize(
    ("bug", "same_type_elsewhere", "same_function_other_type"),
    [
        ("py-missing-sku", "py-reserve-same-type", "py-missing-sku-other-type"),
        ("java-order-missing", "java-capture-same-type", "java-order-other-type"),
        ("node-user-missing", "node-payment-same-type", None),
        ("node-cart-read", "node-browser-bundle", "node-cart-other-type"),
    ],
)
def test_type_and_raising_function_both_split_groups(
    bug: str, same_type_elsewhere: str, same_function_other_type: str | None
) -> None:
    first = _fingerprint(BUGS[bug][0])
    other = _fingerprint(BUGS[same_type_elsewhere][0])
    assert BUGS[bug][0].exc_type == BUGS[same_type_elsewhere][0].exc_type
    assert first.id != other.id
    if same_function_other_type is not None:
        twin = _fingerprint(BUGS[same_function_other_type][0])
        assert (twin.culprit, twin.frames[0].function) == (first.culprit, first.frames[0].function)
        assert twin.id != first.id


@pytest.mark.parametrize(
    ("bug", "culprit"),
    [
        ("py-missing-sku", "shop/orders.py in create_order"),
        ("py-payment-in-library", "shop/payments.py in charge"),
        ("java-order-missing", "com.shop.orders.OrderService.create"),
        ("java-cart-lambda", "com.shop.cart.CartService.lambda$total"),
        ("java-signup-caused-by", "com.shop.customers.CustomerService.register"),
        ("node-cart-read", "src/cart.js in addItem"),
        ("node-browser-bundle", "js/main.js in renderCart"),
        ("go-order-nil", "github.com/acme/shop/orders.(*Service).Create"),
        ("dotnet-order-missing", "Shop.Orders.OrderService.Get"),
        ("dotnet-cart-lambda", "Shop.Cart.CartService.Total"),
    ],
)
def test_the_culprit_is_the_top_in_app_frame(bug: str, culprit: str) -> None:
    assert _fingerprint(BUGS[bug][0]).culprit == culprit


def _frame(file: str, function: str, line: int | None = 1, in_app: bool = True) -> Frame:
    return Frame(file, function, line, None, in_app)


def _stack(*frames: Frame, language: Language = "python") -> ParsedStack:
    return ParsedStack(language, frames)


APP = (_frame("/app/shop/a.py", "inner"), _frame("/app/shop/b.py", "middle"))
LIBRARY = _frame("/venv/lib/python3.11/site-packages/x/y.py", "lib", in_app=False)


def test_the_message_and_line_numbers_never_enter_a_stack_fingerprint() -> None:
    moved = (_frame("/app/shop/a.py", "inner", 99), _frame("/app/shop/b.py", "middle", None))
    base = fingerprint("KeyError", "'a'", _stack(*APP))
    assert fingerprint("KeyError", "something else", _stack(*moved)).id == base.id
    assert fingerprint("ValueError", "'a'", _stack(*APP)).id != base.id


def test_library_frames_are_skipped_when_in_app_frames_exist() -> None:
    base = fingerprint("E", "", _stack(*APP))
    with_library = fingerprint("E", "", _stack(LIBRARY, APP[0], LIBRARY, APP[1]))
    assert with_library.id == base.id
    assert with_library.frames == APP
    assert with_library.culprit == "shop/a.py in inner"


def test_without_in_app_frames_the_top_frames_count() -> None:
    other = _frame("/venv/lib/python3.11/site-packages/x/z.py", "other", in_app=False)
    result = fingerprint("E", "", _stack(LIBRARY, other))
    assert (result.basis, result.frames, result.culprit) == (
        "stack",
        (LIBRARY, other),
        "x/y.py in lib",
    )
    assert fingerprint("E", "", _stack(other, LIBRARY)).id != result.id


def test_only_the_top_max_frames_count() -> None:
    deeper = (*APP, _frame("/app/shop/c.py", "outer"), _frame("/app/shop/d.py", "main"))
    assert fingerprint("E", "", _stack(*deeper), max_frames=2).id == (
        fingerprint("E", "", _stack(*APP), max_frames=2).id
    )
    assert fingerprint("E", "", _stack(*deeper)).id != fingerprint("E", "", _stack(*APP)).id
    assert len(fingerprint("E", "", _stack(*deeper), max_frames=0).frames) == 1
    assert fingerprint("E", "", _stack(*deeper), max_frames=-3).id == (
        fingerprint("E", "", _stack(APP[0]), max_frames=1).id
    )


def test_frames_differing_only_in_file_or_function_group_apart() -> None:
    base = fingerprint("E", "", _stack(*APP)).id
    assert fingerprint("E", "", _stack(_frame("/app/shop/z.py", "inner"), APP[1])).id != base
    assert fingerprint("E", "", _stack(_frame("/app/shop/a.py", "other"), APP[1])).id != base


def test_the_type_is_read_with_whitespace_collapsed() -> None:
    assert (
        fingerprint(" KeyError\n", "", _stack(*APP)).id
        == fingerprint("KeyError", "", _stack(*APP)).id
    )


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("com.shop.Repo$$EnhancerByCGLIB$$1a2b3c", "com.shop.Repo$$EnhancerByCGLIB$$ffee00"),
        ("com.shop.Repo$$SpringCGLIB$$0", "com.shop.Repo$$SpringCGLIB$$1"),
        ("com.shop.Cart$$Lambda$12/0x0000000800c0b000", "com.shop.Cart$$Lambda/0x000001e0a1003a00"),
        ("jdk.proxy2.$Proxy12", "jdk.proxy2.$Proxy98"),
        (
            "jdk.internal.reflect.GeneratedMethodAccessor7",
            "jdk.internal.reflect.GeneratedMethodAccessor31",
        ),
        ("com.shop.Order$HibernateProxy$OqF3mAbc", "com.shop.Order$HibernateProxy$Zz91kLmn"),
    ],
)
def test_java_generated_class_names_do_not_split_groups(left: str, right: str) -> None:
    def print_of(module: str) -> str:
        return fingerprint("E", "", _stack(Frame("", "run", 1, module, True), language="java")).id

    assert print_of(left) == print_of(right)
    assert print_of(left) != print_of("com.shop.Other")


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("lambda$handle$0", "lambda$handle$12"),
        ("access$000", "access$100"),
        ("f$lambda-1", "f$lambda-4"),
    ],
)
def test_java_generated_method_numbers_do_not_split_groups(left: str, right: str) -> None:
    def print_of(function: str) -> str:
        return fingerprint(
            "E", "", _stack(Frame("", function, 1, "com.shop.A", True), language="java")
        ).id

    assert print_of(left) == print_of(right)
    assert print_of("lambda$handle$0") != print_of("lambda$other$0")


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("/app/shop/orders.py", "/srv/releases/42/shop/orders.py"),
        (
            "/app/.venv/lib/python3.11/site-packages/dj/db.py",
            "/usr/lib/python3/dist-packages/dj/db.py",
        ),
        ("/app/node_modules/express/lib/router.js", "/srv/x/node_modules/express/lib/router.js"),
        (
            "https://a.cdn.io/static/js/main.8f3a2c1b.js",
            "https://b.cdn.io/static/js/main.0d9e1f2a.js",
        ),
        ("webpack:///./src/cart.js?1a2b", "webpack-internal:///./src/cart.js"),
        ("file:///app/src/user.mjs", "/home/node/src/user.mjs"),
        ("C:\\deploy\\shop\\orders.py", "/app/shop/orders.py"),
    ],
)
def test_deploy_roots_do_not_split_groups(left: str, right: str) -> None:
    def print_of(file: str) -> str:
        return fingerprint("E", "", _stack(_frame(file, "f"), language="node")).id

    assert print_of(left) == print_of(right)


def test_without_frames_the_normalised_message_groups() -> None:
    empty = ParsedStack("unknown", ())
    first = fingerprint("NotFound", "user 123 not found", empty)
    assert first == Fingerprint(first.id, "", "message", ())
    assert fingerprint("NotFound", "user 456 not found", empty).id == first.id
    assert fingerprint("NotFound", "user  42\tnot found ", empty).id == first.id
    assert fingerprint("NotFound", "order 123 not found", empty).id != first.id
    assert fingerprint("Missing", "user 123 not found", empty).id != first.id
    assert fingerprint("NotFound", "user 123 not found", _stack(*APP)).id != first.id


def test_ids_are_16_lowercase_hex_characters() -> None:
    for samples in BUGS.values():
        identifier = _fingerprint(samples[0]).id
        assert len(identifier) == 16
        assert set(identifier) <= set("0123456789abcdef")


def test_ids_are_stable_across_processes() -> None:
    script = (
        "from gateway.error_tracking.fingerprint import fingerprint\n"
        "from gateway.error_tracking.stacktrace import parse_stacktrace\n"
        "from tests.gateway.error_tracking.corpus import BUGS\n"
        "s = BUGS['java-order-missing'][0]\n"
        "print(fingerprint(s.exc_type, s.message, parse_stacktrace(s.stacktrace)).id)\n"
        "print(fingerprint('E', 'user 7 gone', parse_stacktrace('')).id)\n"
    )
    root = Path(__file__).resolve().parents[3]
    seen = {
        subprocess.run(
            [sys.executable, "-c", script],
            cwd=root,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    here = _fingerprint(BUGS["java-order-missing"][0]).id
    there = fingerprint("E", "user 9 gone", ParsedStack("unknown", ())).id
    assert seen == {f"{here}\n{there}\n"}
