"""Who is calling, may they, and how fast: the authenticator shared by every listener.

A request is identified by its bearer token (``Authorization: Bearer <token>``, HTTP header or
gRPC metadata) or, without one, by its verified client certificate's subject. The token is
hashed and compared with every configured hash in constant time; it is never kept, logged or
echoed. Refusals are :class:`~gateway.errors.UnauthenticatedError` (401 / UNAUTHENTICATED),
:class:`~gateway.errors.PermissionDeniedError` (403 / PERMISSION_DENIED) and
:class:`~gateway.errors.RateLimitedError` (429 / RESOURCE_EXHAUSTED with a delay), counted per
identity name and noted in the audit trail when one is configured.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from cryptography.x509.oid import NameOID
from prometheus_client import CollectorRegistry, Counter

from gateway.errors import PermissionDeniedError, RateLimitedError, UnauthenticatedError
from gateway.otlp.batch import Batch
from gateway.otlp.resource_attributes import AttributeAction, set_resource_attributes
from gateway.security.auth_config import (
    SCOPES,
    AuthConfig,
    CertificateConfig,
    Scope,
    TokenConfig,
    hash_token,
    parsed_subject,
    subject_key,
)
from gateway.security.limits import Limit, admit, foresee, give_back

log = logging.getLogger("otelgate.auth")

UNKNOWN = "unknown"  # the name label of requests no identity could be found for


class AuditSink(Protocol):
    """What the authenticator tells the audit trail."""

    def note_auth_failure(self, reason: str, peer: str | None, name: str | None = None) -> None:
        """A refused request (the trail rate-limits these)."""

    def note_token_use(self, name: str, requests: int = 1, items: int = 0) -> None:
        """An accepted request (the trail aggregates these per minute)."""


@dataclass(frozen=True, slots=True, eq=False)
class Identity:
    """A caller the gateway knows: its name, scopes, tenant and rate limits."""

    name: str
    scopes: frozenset[str]
    tenant: str | None
    via: Literal["token", "certificate", "none"]
    limits: tuple[Limit, ...] = ()
    stamp: tuple[AttributeAction, ...] = ()  # the identity's resource attributes


ANONYMOUS = Identity("anonymous", frozenset(SCOPES), None, "none")
"""Every request when authentication is off."""


def _common_name(subject: str) -> str | None:
    name = parsed_subject(subject)
    found = name.get_attributes_for_oid(NameOID.COMMON_NAME) if name is not None else []
    return str(found[0].value) if found else None


class Authenticator:
    """Identifies, authorises and rate-limits requests per the ``auth:`` section."""

    def __init__(
        self,
        config: AuthConfig,
        registry: CollectorRegistry | None = None,
        audit: AuditSink | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.enabled = config.enabled
        self.audit = audit
        tenants = {
            name: Limit.of(f"tenant {name}", cfg, clock) for name, cfg in config.tenants.items()
        }
        attributes = config.resource_attributes

        def identity(
            principal: TokenConfig | CertificateConfig, via: Literal["token", "certificate"]
        ) -> Identity:
            limits = [Limit.of(principal.name, principal.limits, clock)] if principal.limits else []
            if principal.tenant in tenants:
                limits.append(tenants[principal.tenant])
            # Whatever the client sent under these keys goes (every copy of it), then the
            # gateway's values: a client cannot pose as another name or tenant.
            actions = []
            for key, value in ((attributes.name, principal.name),
                               (attributes.tenant, principal.tenant)):  # fmt: skip
                if key:
                    actions.append(AttributeAction(key, "delete"))
                    if value:
                        actions.append(AttributeAction(key, "insert", value))
            stamp = tuple(actions)
            return Identity(
                principal.name,
                frozenset(principal.scopes),
                principal.tenant,
                via,
                tuple(limits),
                stamp,
            )

        self._tokens = [(t.sha256 or "", identity(t, "token")) for t in config.tokens]
        self._subjects: dict[tuple[str, ...], Identity] = {}
        self._common_names: dict[str, Identity] = {}
        for cert in config.certificates:
            self._add_certificate(cert, identity(cert, "certificate"))
        registry = registry if registry is not None else CollectorRegistry()
        self._requests = Counter(
            "otelgate_auth_requests",
            "Requests by identity name and outcome (accepted, unauthenticated, "
            "permission_denied, rate_limited); name is 'unknown' when none was found.",
            ["name", "transport", "outcome"],
            registry=registry,
        )
        self._items = Counter(
            "otelgate_auth_items",
            "Items by identity name, signal and outcome (accepted, rate_limited).",
            ["name", "signal", "outcome"],
            registry=registry,
        )

    def _add_certificate(self, cert: CertificateConfig, identity: Identity) -> None:
        key = subject_key(cert.subject) if cert.subject is not None else None
        if key is not None:
            self._subjects[key] = identity
        elif cert.common_name is not None:
            self._common_names[cert.common_name] = identity

    def authenticate(
        self,
        authorization: str | None,
        subject: str | None,
        *,
        scope: Scope,
        transport: str,
        peer: str | None = None,
    ) -> Identity:
        """The caller's identity if it may use ``scope``; else raises (counted, audited)."""
        if not self.enabled:
            return ANONYMOUS
        try:
            identity = self._identify(authorization, subject)
        except UnauthenticatedError as exc:
            self._refused(UNKNOWN, transport, exc.reason, peer)
            raise
        if scope not in identity.scopes:
            self._refused(identity.name, transport, "permission_denied", peer)
            raise PermissionDeniedError(
                f"'{identity.name}' may not do this: it needs the {scope} scope "
                f"(has {', '.join(sorted(identity.scopes))})"
            )
        return identity

    def _identify(self, authorization: str | None, subject: str | None) -> Identity:
        if authorization:
            scheme, _, credential = authorization.strip().partition(" ")
            if scheme.lower() != "bearer" or not credential.strip():
                raise UnauthenticatedError(
                    "unsupported Authorization header; use 'Authorization: Bearer <token>'"
                )
            digest = hash_token(credential.strip())
            found: Identity | None = None
            for known, identity in self._tokens:  # every hash compared: constant time
                if hmac.compare_digest(known, digest):
                    found = identity
            if found is None:
                raise UnauthenticatedError("invalid bearer token")
            return found
        if subject is not None:
            key = subject_key(subject)
            by_cert = self._subjects.get(key) if key is not None else None
            common_name = _common_name(subject) if by_cert is None else None
            if common_name is not None:
                by_cert = self._common_names.get(common_name)
            if by_cert is None:
                raise UnauthenticatedError(f"client certificate {subject!r} is not authorised")
            return by_cert
        raise UnauthenticatedError(
            "authentication required: send 'Authorization: Bearer <token>' or a client certificate"
        )

    def _refused(self, name: str, transport: str, reason: str, peer: str | None) -> None:
        self._requests.labels(name, transport, reason).inc()
        if self.audit is not None:
            self.audit.note_auth_failure(reason, peer, None if name == UNKNOWN else name)

    def charge(
        self, identity: Identity, signal: str, items: int, nbytes: int, transport: str
    ) -> None:
        """Take a request's items and bytes from the identity's (and tenant's) buckets, or
        raise :class:`RateLimitedError` with the delay after which it would fit."""
        if identity.limits:
            wait, label = admit(identity.limits, items, nbytes)
            self._limited(identity, signal, items, transport, wait, label)

    def foresee(self, identity: Identity, signal: str, transport: str) -> None:
        """Before the body is read: refuse (:class:`RateLimitedError`) when a request as large
        as the identity's last one would be, with the wait that one would need."""
        if identity.limits:
            wait, label = foresee(identity.limits)
            self._limited(identity, signal, 0, transport, wait, label)

    def give_back(self, identity: Identity, items: int, nbytes: int) -> None:
        """Return what :meth:`charge` took for a request refused after all."""
        if identity.limits:
            give_back(identity.limits, items, nbytes)

    def _limited(
        self, identity: Identity, signal: str, items: int, transport: str, wait: float, label: str
    ) -> None:
        if wait <= 0.0:
            return
        self._requests.labels(identity.name, transport, "rate_limited").inc()
        if items:
            self._items.labels(identity.name, signal, "rate_limited").inc(items)
        delay = min(wait, self.config.max_retry_after)
        raise RateLimitedError(
            f"rate limit of {label} reached; retry in {delay:.2f}s", retry_after=delay
        )

    def accepted(self, identity: Identity, signal: str, items: int, transport: str) -> None:
        """Count an accepted request for its identity (and note it for the audit trail)."""
        if identity is ANONYMOUS:
            return
        self._requests.labels(identity.name, transport, "accepted").inc()
        if items:
            self._items.labels(identity.name, signal, "accepted").inc(items)
        if self.audit is not None:
            self.audit.note_token_use(identity.name, 1, items)

    @staticmethod
    def stamp(identity: Identity, batch: Batch) -> Batch:
        """Set the identity's resource attributes on every resource of ``batch``."""
        return set_resource_attributes(batch, identity.stamp) if identity.stamp else batch
