"""The email configuration's TLS switches."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.alerting.notifiers.config import EmailConfig

BASE = {"smtp_host": "smtp.example", "from": "a@example.com", "to": "b@example.com"}


def test_starttls_is_the_default() -> None:
    config = EmailConfig.model_validate(BASE)
    assert (config.starttls, config.tls, config.to) == (True, False, ["b@example.com"])


def test_tls_alone_means_implicit_tls_without_starttls() -> None:
    config = EmailConfig.model_validate(BASE | {"tls": True, "port": 465})
    assert (config.tls, config.starttls) == (True, False)


def test_tls_and_starttls_both_set_is_an_error() -> None:
    with pytest.raises(ValidationError, match="exclude each other"):
        EmailConfig.model_validate(BASE | {"tls": True, "starttls": True})
