"""The authenticator: tokens and certificates to identities, scopes, limits, counters and
audit notes; the token itself never leaves it."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import CollectorRegistry

from gateway.errors import PermissionDeniedError, RateLimitedError, UnauthenticatedError
from gateway.otlp.batch import Batch, Signal
from gateway.security.auth import ANONYMOUS, Authenticator
from gateway.security.auth_config import AuthConfig

INGEST = "ingest-token-0123456789abcdef"
READER = "reader-token-0123456789abcdef"


class Notes:
    def __init__(self) -> None:
        self.failures: list[tuple[str, str | None, str | None]] = []
        self.uses: list[tuple[str, int, int]] = []

    def note_auth_failure(self, reason: str, peer: str | None, name: str | None = None) -> None:
        self.failures.append((reason, peer, name))

    def note_token_use(self, name: str, requests: int = 1, items: int = 0) -> None:
        self.uses.append((name, requests, items))


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def make(**extra: Any) -> tuple[Authenticator, CollectorRegistry, Notes, Clock]:
    config = AuthConfig.model_validate(
        {
            "tokens": [
                {"name": "checkout", "token": INGEST, "scopes": ["ingest"], "tenant": "acme",
                 "limits": {"items_per_second": 10, "burst": 1}},
                {"name": "grafana", "token": READER, "scopes": ["read"]},
            ],
            "certificates": [
                {"name": "payments", "subject": "CN=payments, O=Acme", "scopes": ["ingest"]},
                {"name": "edge", "common_name": "edge-proxy", "scopes": ["ingest", "read"]},
            ],
            **extra,
        }
    )  # fmt: skip
    registry, notes, clock = CollectorRegistry(), Notes(), Clock()
    return Authenticator(config, registry, notes, clock), registry, notes, clock


def requests(registry: CollectorRegistry, **labels: str) -> float:
    return registry.get_sample_value("otelgate_auth_requests_total", labels) or 0.0


def test_tokens_map_to_their_identity():
    auth, _, _, _ = make()
    who = auth.authenticate(f"Bearer {INGEST}", None, scope="ingest", transport="http")
    assert (who.name, who.tenant, who.via) == ("checkout", "acme", "token")
    assert auth.authenticate(f"bearer  {READER} ", None, scope="read", transport="admin").name == (
        "grafana"
    )


@pytest.mark.parametrize(
    ("authorization", "subject", "words"),
    [
        (None, None, "authentication required"),
        ("Bearer wrong-token-0123456789", None, "invalid bearer token"),
        (f"Basic {INGEST}", None, "use 'Authorization: Bearer <token>'"),
        ("Bearer ", None, "unsupported Authorization header"),
        (None, "CN=stranger,O=Acme", "is not authorised"),
    ],
)
def test_unknown_callers_are_unauthenticated_and_counted(authorization, subject, words):
    auth, registry, notes, _ = make()
    with pytest.raises(UnauthenticatedError) as info:
        auth.authenticate(
            authorization, subject, scope="ingest", transport="grpc", peer="1.2.3.4:5"
        )
    assert words in str(info.value)
    assert INGEST not in str(info.value)
    assert requests(registry, name="unknown", transport="grpc", outcome="unauthenticated") == 1
    assert notes.failures == [("unauthenticated", "1.2.3.4:5", None)]


def test_a_known_caller_without_the_scope_is_denied():
    auth, registry, notes, _ = make()
    with pytest.raises(PermissionDeniedError, match="needs the ingest scope"):
        auth.authenticate(f"Bearer {READER}", None, scope="ingest", transport="http")
    assert requests(registry, name="grafana", transport="http", outcome="permission_denied") == 1
    assert notes.failures == [("permission_denied", None, "grafana")]


def test_certificates_match_by_normalised_subject_or_common_name():
    auth, _, _, _ = make()
    assert auth.authenticate(None, "CN=payments,O=Acme", scope="ingest", transport="grpc").name == (
        "payments"
    )
    edge = auth.authenticate(None, "CN=edge-proxy,OU=Ops,O=Other", scope="read", transport="admin")
    assert (edge.name, edge.via) == ("edge", "certificate")


def test_a_token_wins_over_a_certificate():
    auth, _, _, _ = make()
    who = auth.authenticate(
        f"Bearer {INGEST}", "CN=payments,O=Acme", scope="ingest", transport="http"
    )
    assert who.name == "checkout"
    with pytest.raises(UnauthenticatedError):  # a wrong token is not rescued by the certificate
        auth.authenticate("Bearer nope-nope-nope-nope", "CN=payments,O=Acme", scope="ingest",
                          transport="http")  # fmt: skip


def test_rate_limit_refuses_with_the_delay_that_fits():
    auth, registry, _, clock = make()
    who = auth.authenticate(f"Bearer {INGEST}", None, scope="ingest", transport="http")
    auth.charge(who, "traces", 8, 100, "http")
    with pytest.raises(RateLimitedError) as info:
        auth.charge(who, "traces", 5, 100, "http")
    assert info.value.retry_after == pytest.approx(0.3)
    assert info.value.http_status == 429
    clock.now += 0.3
    auth.charge(who, "traces", 5, 100, "http")
    labels = {"name": "checkout", "signal": "traces", "outcome": "rate_limited"}
    assert registry.get_sample_value("otelgate_auth_items_total", labels) == 5


def test_retry_after_is_capped():
    auth, _, _, _ = make(max_retry_after=2)
    who = auth.authenticate(f"Bearer {INGEST}", None, scope="ingest", transport="http")
    auth.charge(who, "traces", 1000, 0, "http")  # a full bucket takes it, 990 in debt
    with pytest.raises(RateLimitedError) as info:
        auth.charge(who, "traces", 0, 0, "http")
    assert info.value.retry_after == 2


def test_accepted_requests_are_counted_and_noted_per_name():
    auth, registry, notes, _ = make()
    who = auth.authenticate(f"Bearer {INGEST}", None, scope="ingest", transport="http")
    auth.accepted(who, "logs", 7, "http")
    labels = {"name": "checkout", "signal": "logs", "outcome": "accepted"}
    assert registry.get_sample_value("otelgate_auth_items_total", labels) == 7
    assert notes.uses == [("checkout", 1, 7)]


def test_stamp_sets_name_and_tenant_over_what_the_client_sent():
    auth, _, _, _ = make()
    who = auth.authenticate(f"Bearer {INGEST}", None, scope="ingest", transport="http")
    request = ExportTraceServiceRequest()
    resource = request.resource_spans.add().resource
    forged = resource.attributes.add()
    forged.key, forged.value.string_value = "otelgate.auth.name", "someone-else"
    batch = Batch(Signal.TRACES, request, 0, request.SerializeToString(), None)
    auth.stamp(who, batch)
    assert batch.encoded is not None
    decoded = ExportTraceServiceRequest.FromString(batch.encoded)
    attributes = {
        kv.key: kv.value.string_value for kv in decoded.resource_spans[0].resource.attributes
    }
    assert attributes == {"otelgate.auth.name": "checkout", "otelgate.tenant": "acme"}


def test_off_means_everyone_is_anonymous_with_every_scope():
    auth = Authenticator(AuthConfig())
    assert auth.authenticate(None, None, scope="admin", transport="admin") is ANONYMOUS
