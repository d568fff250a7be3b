"""docs/security.md: its hardened configuration passes check-config once the files it names
exist, and it says what the access table says."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.config.loading import load_config
from gateway.security.access import ROUTES
from gateway.security.auth_config import secrets_unread
from tests.support.certs import TestCa

DOC = Path(__file__).resolve().parents[3] / "docs" / "security.md"


def hardened_yaml() -> str:
    text = DOC.read_text()
    section = text[text.index("## A hardened configuration") :]
    return re.search(r"```yaml\n(.*?)```", section, re.DOTALL)[1]  # type: ignore[index]


def test_the_hardened_example_is_a_valid_configuration(tmp_path: Path):
    ca = TestCa(tmp_path, "clients-ca")
    server = ca.server()
    text = (
        hardened_yaml()
        .replace("/etc/otelgate/tls/server.pem", str(server.cert_file))
        .replace("/etc/otelgate/tls/server-key.pem", str(server.key_file))
        .replace("/etc/otelgate/tls/clients-ca.pem", str(ca.ca_file))
        .replace("/var/lib/otelgate", str(tmp_path / "lib"))
        .replace("/run/secrets/", f"{tmp_path}/")
    )
    for name in ("checkout", "prometheus", "oncall"):
        (tmp_path / name).write_text(f"{name}-token-for-the-docs-test\n")
    (tmp_path / "audit-key").write_bytes(b"k" * 32)
    (tmp_path / "audit-key").chmod(0o600)
    (tmp_path / "otelgate.yaml").write_text(text)
    config = load_config(tmp_path / "otelgate.yaml", environ={})
    assert config.auth.enabled and config.audit.enabled
    assert [t.name for t in config.auth.tokens] == ["checkout", "prometheus", "oncall"]
    assert config.admin.tls is not None


def test_rules_commands_do_not_need_the_secret_files(tmp_path: Path):
    config_file = tmp_path / "otelgate.yaml"
    config_file.write_text(
        "receivers: {otlp: {protocols: {grpc: {endpoint: '127.0.0.1:4317'}}}}\n"
        "exporters: {file: {path: /tmp/x.jsonl}}\n"
        "service: {pipelines: {traces: {receivers: [otlp], exporters: [file]}}}\n"
        "auth: {tokens: [{name: a, token_file: /nonexistent/a, scopes: [ingest]},\n"
        "                {name: b, token_file: /nonexistent/b, scopes: [read]}]}\n"
    )
    with secrets_unread():
        config = load_config(config_file, environ={})
    first, second = config.auth.tokens
    assert first.sha256 != second.sha256  # stand-ins no client can present, not equal


def test_the_scope_table_in_the_docs_matches_the_code():
    text = DOC.read_text()
    table = text[text.index("| Scope | Routes |") :].split("\n\n", 1)[0]
    admin_row = next(line for line in table.splitlines() if line.startswith("| `admin`"))
    for route in ROUTES:
        if route.scope == "admin":
            last = route.path.rsplit("/", 1)[-1]
            assert last.strip("{}").split("_")[0] in admin_row or last in admin_row, route
