"""Messages lose their variable parts and paths their deploy roots."""

from __future__ import annotations

import pytest

from gateway.error_tracking.fingerprint import MAX_MESSAGE, normalise_message, normalise_path


@pytest.mark.parametrize(
    ("message", "normalised"),
    [
        ("user 123 not found", "user <num> not found"),
        ("user123 not found", "user<num> not found"),
        ("took 3.25s, limit -1", "took <num>s, limit -<num>"),
        ("requires version 1.2.3", "requires version <num>"),
        ("order 550e8400-E29B-41d4-a716-446655440000 missing", "order <uuid> missing"),
        ("no account for ann.lee+shop@mail.example.co.uk", "no account for <email>"),
        ("connect to 10.0.12.7:5432 failed.", "connect to <ip>:<num> failed."),
        ("peer fe80::1ff:fe23:4567:890a down", "peer <ip> down"),
        ("peer 2001:0db8:85a3:0000:0000:8a2e:0370:7334 down", "peer <ip> down"),
        ("at 12:30:45 sharp", "at <num>:<num>:<num> sharp"),
        ("std::vector overflow", "std::vector overflow"),
        ("object at 0x7f3a2b1c9d00", "object at <hex>"),
        ("commit a1b2c3d not found", "commit <hex> not found"),
        ("doc 507f1f77bcf86cd799439011 gone", "doc <hex> gone"),
        ("trace 4bf92f3577b34da6a3ce929d0e0e4736", "trace <hex>"),
        ("req_8f3a9c1d2e failed", "req_<hex> failed"),
        ("payment 91bb and 3e declined", "payment <hex> and <hex> declined"),
        ("the facade was defaced", "the facade was defaced"),
        ("token abcdefabcdefabcdef", "token <hex>"),
        ("KeyError: 'sku-123'", "KeyError: <str>"),
        ('column "email" violates', "column <str> violates"),
        ("can't read user's order", "can't read user's order"),
        ("reading 'price' of undefined", "reading <str> of undefined"),
        (
            "GET https://api.shop.io/v2/users/42?id=9&token=abc#top",
            "GET https://api.shop.io/v<num>/users/<num>?id=<val>&token=<val>#top",
        ),
        ("  many \n\t spaces  ", "many spaces"),
        ("", ""),
        ("utf8 and utf16", "utf<num> and utf<num>"),
    ],
)
def test_normalise_message(message: str, normalised: str) -> None:
    assert normalise_message(message) == normalised


def test_one_template_with_different_values_normalises_alike() -> None:
    variants = [
        "payment 91bb for ann@example.com declined at 10.0.0.1 (attempt 3)",
        "payment 1c4f for bob@example.org declined at 192.168.7.20 (attempt 12)",
    ]
    assert len({normalise_message(variant) for variant in variants}) == 1


def test_long_messages_are_cut_to_500_characters() -> None:
    assert len(normalise_message("word " * 1000)) == MAX_MESSAGE
    assert normalise_message("x" * 10_000) == "x" * MAX_MESSAGE


@pytest.mark.parametrize(
    ("path", "normalised"),
    [
        ("/app/shop/orders.py", "shop/orders.py"),
        ("/srv/releases/42/shop/orders.py", "shop/orders.py"),
        ("orders.py", "orders.py"),
        ("./src/../src/cart.js", "src/cart.js"),
        (
            "/app/.venv/lib/python3.11/site-packages/django/db/models/query.py",
            "django/db/models/query.py",
        ),
        ("/usr/lib/python3/dist-packages/yaml/__init__.py", "yaml/__init__.py"),
        ("/usr/lib/python3.11/json/decoder.py", "json/decoder.py"),
        ("C:\\Python311\\Lib\\json\\decoder.py", "json/decoder.py"),
        ("/app/node_modules/.pnpm/lodash@4.17.21/node_modules/lodash/map.js", "lodash/map.js"),
        ("/app/node_modules/@vue/runtime-core/index.js", "@vue/runtime-core/index.js"),
        (
            "/root/go/pkg/mod/github.com/go-chi/chi/v5@v5.0.10/mux.go",
            "github.com/go-chi/chi/v5/mux.go",
        ),
        ("/app/vendor/github.com/lib/pq/conn.go", "github.com/lib/pq/conn.go"),
        ("https://cdn.shop.io/static/js/main.8f3a2c1b.js", "js/main.js"),
        ("https://cdn.shop.io/static/js/vendor.77ab12ef.chunk.js", "js/vendor.chunk.js"),
        ("/app/dist/index-4f3a2b1c.js", "dist/index.js"),
        ("/app/dist/app.module.js", "dist/app.module.js"),
        ("webpack:///./src/cart.js?1a2b", "src/cart.js"),
        ("webpack://shop/./src/cart.js", "src/cart.js"),
        ("file:///app/src/user.mjs", "src/user.mjs"),
        ("node:internal/modules/cjs/loader", "cjs/loader"),
        ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap>"),
        ("<string>", "<string>"),
        ("", ""),
    ],
)
def test_normalise_path(path: str, normalised: str) -> None:
    assert normalise_path(path) == normalised
