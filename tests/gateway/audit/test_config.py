"""``audit:``: off by default, sizes, and a key file that is checked but never shown."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.audit.config import AuditConfig, default_audit_path, parse_size

SECRET = b"super-secret-key-material-0123456789"


def test_off_unless_a_path_or_key_is_given(tmp_path: Path) -> None:
    assert AuditConfig().enabled is False
    assert AuditConfig.model_validate({"path": "a.jsonl"}).enabled is True
    assert AuditConfig.model_validate({"path": "a.jsonl", "enabled": False}).enabled is False
    on = AuditConfig.model_validate({"enabled": True})
    environ = {"OTELGATE_DATA_DIR": str(tmp_path)}
    assert on.resolved_path(environ) == tmp_path / "audit" / "audit.jsonl"
    assert default_audit_path({}) == Path("./otelgate-data/audit/audit.jsonl")
    key = tmp_path / "key"
    key.write_bytes(SECRET)
    assert AuditConfig.model_validate({"hmac_key_file": str(key)}).enabled is True


@pytest.mark.parametrize(
    ("value", "size"),
    [(4096, 4096), ("100MiB", 100 * 1024**2), ("512KiB", 512 * 1024), ("1GB", 10**9),
     ("2 MB", 2 * 10**6), ("1.5MiB", 1536 * 1024), ("8192", 8192), ("1gib", 1024**3)],
)  # fmt: skip
def test_sizes(value: object, size: int) -> None:
    assert parse_size(value) == size
    assert AuditConfig.model_validate({"max_size": value}).max_size == size


@pytest.mark.parametrize("value", ["100 apples", "MiB", True, [], "-5MiB"])
def test_bad_sizes(value: object) -> None:
    with pytest.raises(ValidationError, match="invalid size"):
        AuditConfig.model_validate({"max_size": value})


def test_limits() -> None:
    with pytest.raises(ValidationError):
        AuditConfig.model_validate({"max_size": 100})
    with pytest.raises(ValidationError):
        AuditConfig.model_validate({"max_files": 0})
    with pytest.raises(ValidationError):
        AuditConfig.model_validate({"pth": "x"})  # strict


def test_the_key_file_is_checked_and_never_shown(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="No such file"):
        AuditConfig.model_validate({"hmac_key_file": str(tmp_path / "missing")})
    short = tmp_path / "short"
    short.write_bytes(b"tiny-secret\n")
    with pytest.raises(ValidationError) as caught:
        AuditConfig.model_validate({"hmac_key_file": str(short)})
    assert "holds 11 bytes" in str(caught.value) and "tiny-secret" not in str(caught.value)
    with pytest.raises(ValidationError, match="not a regular file"):
        AuditConfig.model_validate({"hmac_key_file": str(tmp_path)})
    key = tmp_path / "key"
    key.write_bytes(SECRET + b"\n")
    key.chmod(0o600)
    config = AuditConfig.model_validate({"hmac_key_file": str(key)})
    assert config.key() == SECRET  # the trailing newline is not part of it
    assert SECRET.decode() not in repr(config) + str(config.model_dump())


def test_a_key_others_can_read_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = tmp_path / "key"
    key.write_bytes(SECRET)
    key.chmod(0o644)
    config = AuditConfig.model_validate({"hmac_key_file": str(key)})
    with caplog.at_level(logging.WARNING, logger="otelgate.audit"):
        assert config.key() == SECRET
    assert "readable by group or others (mode 644)" in caplog.text
    assert SECRET.decode() not in caplog.text


def test_commands_that_do_not_serve_need_no_key_file(tmp_path: Path) -> None:
    auth_config = pytest.importorskip("gateway.security.auth_config")
    with auth_config.secrets_unread():
        config = AuditConfig.model_validate({"hmac_key_file": str(tmp_path / "elsewhere")})
    assert config.enabled is True


def test_rotation_keys() -> None:
    config = AuditConfig.model_validate({"daily_at": 750, "max_age": "400d", "compress": False})
    assert (config.daily_at, config.max_age, config.compress) == ("12:30", 400 * 86400.0, False)
    assert AuditConfig.model_validate({"daily_at": None}).daily_at is None
    assert AuditConfig().max_age is None  # an audit trail is kept unless you choose otherwise
    with pytest.raises(ValidationError, match="UTC time of day HH:MM"):
        AuditConfig.model_validate({"daily_at": "25:00"})
    with pytest.raises(ValidationError):
        AuditConfig.model_validate({"max_age": 0})


def test_errors_name_the_key_path() -> None:
    from gateway.config.issues import ConfigError
    from gateway.config.loading import parse_config

    with pytest.raises(ConfigError) as caught:
        parse_config("audit:\n  path: /tmp/a.jsonl\n  daily_at: '24:10'\n  max_age: soon\n")
    text = str(caught.value)
    assert 'audit.daily_at: must be a UTC time of day HH:MM, 00:00 to 23:59, e.g. "00:00"' in text
    assert "audit.max_age:" in text
