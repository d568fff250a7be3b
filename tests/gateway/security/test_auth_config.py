"""The ``auth:`` section: token forms, hashing at load, and every mistake reported with its path
and without the token in it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from gateway.config.loading import parse_config
from gateway.security.auth_config import hash_token
from tests.gateway.config.helpers import issues_of, patched

TOKEN = "s3cr3t-token-for-tests-0123456789"
DIGEST = hashlib.sha256(TOKEN.encode()).hexdigest()


def test_a_clear_token_is_hashed_and_forgotten():
    tokens = [{"name": "a", "token": TOKEN, "scopes": ["ingest"]}]
    config = parse_config(patched(("auth", {"tokens": tokens})), environ={})
    token = config.auth.tokens[0]
    assert token.sha256 == DIGEST == hash_token(TOKEN)
    assert token.token is None
    assert TOKEN not in config.model_dump_json()
    assert config.auth.enabled


def test_env_file_and_hash_forms_give_the_same_hash(tmp_path: Path):
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    tokens = [
        {"name": "env", "token": "${env:GW_TOKEN}", "scopes": ["ingest"]},
        {"name": "file", "token_file": str(secret), "scopes": ["read"]},
        {"name": "hash", "sha256": DIGEST.upper(), "scopes": ["admin"]},
    ]
    text = patched(("auth", {"tokens": tokens}))
    # The same token three times is refused (one client per token) ...
    assert issues_of(text, {"GW_TOKEN": TOKEN}) == [
        ("auth", "two tokens have the same value; give each client its own")
    ]
    # ... so check each form on its own.
    for token in tokens:
        config = parse_config(patched(("auth", {"tokens": [token]})), environ={"GW_TOKEN": TOKEN})
        assert config.auth.tokens[0].sha256 == DIGEST


def test_no_auth_section_means_off():
    assert not parse_config(patched(), environ={}).auth.enabled


@pytest.mark.parametrize(
    ("token", "path", "words"),
    [
        ({"name": "a", "scopes": ["ingest"]}, "auth.tokens[0]", "give exactly one of sha256"),
        (
            {"name": "a", "token": TOKEN, "sha256": DIGEST, "scopes": ["ingest"]},
            "auth.tokens[0]",
            "(got sha256, token)",
        ),
        (
            {"name": "a", "token": "short", "scopes": ["ingest"]},
            "auth.tokens[0]",
            "shorter than 16",
        ),
        ({"name": "a", "sha256": "abc", "scopes": ["ingest"]}, "auth.tokens[0].sha256", "64 hex"),
        ({"name": "a", "token": TOKEN, "scopes": []}, "auth.tokens[0].scopes", "must not be empty"),
        ({"name": "a", "token": TOKEN, "scopes": ["write"]}, "auth.tokens[0].scopes[0]", "ingest"),
        ({"name": "a b", "token": TOKEN, "scopes": ["read"]}, "auth.tokens[0].name", "letters"),
        (
            {"name": "a", "token_file": "/nonexistent/token", "scopes": ["read"]},
            "auth.tokens[0]",
            "cannot read /nonexistent/token",
        ),
        (
            {"name": "a", "token": TOKEN, "scopes": ["read"], "limits": {"burst": 1}},
            "auth.tokens[0].limits",
            "items_per_second, bytes_per_second or both",
        ),
    ],
)
def test_token_mistakes_have_a_path_and_never_show_the_token(token, path, words):
    found = issues_of(patched(("auth", {"tokens": [token]})))
    assert len(found) == 1, found
    assert found[0][0] == path
    assert words in found[0][1]
    assert TOKEN not in found[0][1] and "short'" not in found[0][1]


def test_names_are_unique_across_tokens_and_certificates():
    auth = {
        "tokens": [{"name": "svc", "token": TOKEN, "scopes": ["ingest"]}],
        "certificates": [{"name": "svc", "common_name": "svc", "scopes": ["ingest"]}],
    }
    assert issues_of(patched(("auth", auth))) == [("auth", "names must be unique; used twice: svc")]


def test_a_certificate_names_one_match():
    cert = {"name": "svc", "subject": "CN=svc", "common_name": "svc", "scopes": ["ingest"]}
    found = issues_of(patched(("auth", {"certificates": [cert]})))
    assert found == [("auth.certificates[0]", "give exactly one of subject or common_name")]


def test_open_paths_are_paths():
    auth = {"tokens": [{"name": "a", "token": TOKEN, "scopes": ["read"]}], "open_paths": ["x"]}
    assert issues_of(patched(("auth", auth))) == [("auth", "open_paths: 'x' must start with /")]


def test_a_tenant_limit_must_name_a_tenant_in_use():
    auth = {
        "tokens": [{"name": "a", "token": TOKEN, "scopes": ["ingest"], "tenant": "acme"}],
        "tenants": {"acme ": {"items_per_second": 10}},
    }
    assert issues_of(patched(("auth", auth))) == [
        ("auth", "tenants: 'acme ' is not the tenant of any token or certificate "
                 "(tenants in use: acme)")
    ]  # fmt: skip
