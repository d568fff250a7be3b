"""The ``auth:`` section: who may send and read, with which scopes, at what rate.

Tokens are kept as SHA-256 hashes only. A token given in clear (``token: ${env:X}``) or in a
file (``token_file``) is hashed while the configuration is validated and the clear value is
dropped, so no dump, error or ``/docs`` page can show it. Client certificates (mTLS, see
``tls.client_ca_file`` on a listener) are mapped to a name by their subject.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from pydantic import Field, field_validator, model_validator

from gateway.config.values import Duration, StrictModel

Scope = Literal["ingest", "read", "admin"]
SCOPES: tuple[Scope, ...] = ("ingest", "read", "admin")
MIN_TOKEN_LENGTH = 16
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


_READ_SECRETS: ContextVar[bool] = ContextVar("otelgate_read_secrets", default=True)


@contextmanager
def secrets_unread() -> Iterator[None]:
    """Validate configurations without reading token files, for commands that only derive
    something else from them (``slo-rules``, ``alert-rules``): such a config never serves."""
    reset = _READ_SECRETS.set(False)
    try:
        yield
    finally:
        _READ_SECRETS.reset(reset)


def reading_secrets() -> bool:
    """False inside :func:`secrets_unread`: key and token files are not to be read."""
    return _READ_SECRETS.get()


def hash_token(token: str) -> str:
    """The SHA-256 hex digest a token is stored and compared as."""
    return hashlib.sha256(token.encode()).hexdigest()


@lru_cache(maxsize=1024)
def parsed_subject(subject: str) -> x509.Name | None:
    """A subject string (RFC 4514, spaces after commas allowed) parsed; None if invalid."""
    try:
        return x509.Name.from_rfc4514_string(re.sub(r"\s*(?<!\\),\s*", ",", subject.strip()))
    except ValueError:
        return None


def subject_key(subject: str) -> tuple[str, ...] | None:
    """A subject's attributes as sorted ``TYPE=value`` strings, so ``CN=a, O=b`` (as openssl
    prints it) and ``O=b,CN=a`` (RFC 4514 order) match; None if it does not parse."""
    name = parsed_subject(subject)
    if name is None:
        return None
    return tuple(sorted(attribute.rfc4514_string() for attribute in name))


class RateLimitConfig(StrictModel):
    """A token bucket per identity (or tenant): items and/or bytes per second. ``burst`` is
    how many seconds' worth may arrive at once (the bucket holds ``rate * burst``)."""

    items_per_second: float | None = Field(default=None, gt=0)
    bytes_per_second: float | None = Field(default=None, gt=0)
    burst: Duration = Field(default=2.0, gt=0)

    @model_validator(mode="after")
    def _some_rate(self) -> RateLimitConfig:
        if self.items_per_second is None and self.bytes_per_second is None:
            raise ValueError("give items_per_second, bytes_per_second or both")
        return self


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(
            f"name {value!r} must be 1-64 letters, digits or _.:@- (it labels metrics and the "
            "audit trail)"
        )
    return value


class _Principal(StrictModel):
    """What tokens and certificates share: a name, scopes, an optional tenant and limits."""

    name: str
    scopes: list[Scope] = Field(min_length=1)
    tenant: str | None = None
    limits: RateLimitConfig | None = None

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return _name(value)


class TokenConfig(_Principal):
    """A bearer token: exactly one of ``sha256``, ``token`` or ``token_file``. After
    validation only ``sha256`` holds it (``token`` is always None)."""

    sha256: str | None = None
    token: str | None = None
    token_file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _hash_now(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        given = [key for key in ("sha256", "token", "token_file") if data.get(key) is not None]
        if len(given) != 1:
            found = f" (got {', '.join(given)})" if given else ""
            raise ValueError(f"give exactly one of sha256, token or token_file{found}")
        data = dict(data)
        if "token" in given:
            data["sha256"] = _checked_hash(str(data.pop("token")), "token")
        elif not _READ_SECRETS.get():  # a stand-in no client can present
            data["sha256"] = hash_token(f"unread token file {data['token_file']}")
        elif "token_file" in given:
            data["sha256"] = _checked_hash(_read_token_file(Path(data["token_file"])), "token_file")
        return data

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is not None:
            value = value.strip().lower()
            if not _SHA256.fullmatch(value):
                raise ValueError(
                    "must be the 64 hex digits of the token's SHA-256 "
                    '(printf %s "$TOKEN" | sha256sum)'
                )
        return value


def _read_token_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"token_file: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"token_file: {path} is not UTF-8 text") from None


def _checked_hash(token: str, key: str) -> str:
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(
            f"{key}: the token is shorter than {MIN_TOKEN_LENGTH} characters, too easy to guess "
            "(make one with: openssl rand -hex 24)"
        )
    return hash_token(token)


class CertificateConfig(_Principal):
    """A client certificate (mTLS), matched by its full subject (RFC 4514, as
    ``CN=checkout,O=Acme``) or by its common name alone."""

    subject: str | None = None
    common_name: str | None = None

    @model_validator(mode="after")
    def _one_match(self) -> CertificateConfig:
        if (self.subject is None) == (self.common_name is None):
            raise ValueError("give exactly one of subject or common_name")
        if self.subject is not None and not subject_key(self.subject):
            raise ValueError(f"subject {self.subject!r} must look like CN=name,O=org (RFC 4514)")
        return self


class ResourceAttributes(StrictModel):
    """Resource attributes the gateway sets on data it accepted from an identified client
    (overwriting what the client sent under these keys); null leaves them out."""

    name: str | None = "otelgate.auth.name"
    tenant: str | None = "otelgate.tenant"


class AuthConfig(StrictModel):
    """``auth``: off unless tokens or certificates are configured."""

    tokens: list[TokenConfig] = Field(default_factory=list)
    certificates: list[CertificateConfig] = Field(default_factory=list)
    #: Rate limits shared by every identity of a tenant (on top of each identity's own).
    tenants: dict[str, RateLimitConfig] = Field(default_factory=dict)
    #: Admin paths answered without a token (probes).
    open_paths: list[str] = Field(default_factory=lambda: ["/health/live", "/health/ready"])
    resource_attributes: ResourceAttributes = ResourceAttributes()
    #: Seconds a refused client's Retry-After may say at most (the bucket may ask for more).
    max_retry_after: Duration = Field(default=60.0, gt=0)

    @property
    def enabled(self) -> bool:
        """Whether any identity is configured (then every OTLP and admin request needs one)."""
        return bool(self.tokens or self.certificates)

    @model_validator(mode="after")
    def _unique(self) -> AuthConfig:
        names = [p.name for p in [*self.tokens, *self.certificates]]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"names must be unique; used twice: {', '.join(duplicates)}")
        hashes = [t.sha256 for t in self.tokens]
        if len(set(hashes)) != len(hashes):
            raise ValueError("two tokens have the same value; give each client its own")
        used = {p.tenant for p in [*self.tokens, *self.certificates]}
        unused = sorted(set(self.tenants) - used)
        if unused:  # a typo would leave the tenant without its limit, silently
            raise ValueError(
                f"tenants: {', '.join(map(repr, unused))} is not the tenant of any token or "
                f"certificate (tenants in use: {', '.join(sorted(t for t in used if t)) or 'none'})"
            )
        for path in self.open_paths:
            if not path.startswith("/"):
                raise ValueError(f"open_paths: {path!r} must start with /")
        return self
