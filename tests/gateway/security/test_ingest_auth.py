"""Identities on the ingest path: names stamped over what clients forge, counts that hold on
the large-request path, a Retry-After that is enough, tokens given back on a refusal."""

from __future__ import annotations

import os
from typing import Any

import pytest
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import CollectorRegistry

from gateway.errors import BackpressureError, RateLimitedError
from gateway.otlp.batch import Signal
from gateway.receivers.ingest import Ingest
from gateway.receivers.status import refusal_status
from gateway.security.auth import Authenticator
from gateway.security.auth_config import AuthConfig
from gateway.selfmetrics import GatewayMetrics
from tests.gateway.receivers.test_ingest import make_ingest, queued_names

TOKEN = "ingest-auth-token-0123456789abcdef"
NO_TENANT = "no-tenant-token-0123456789abcdef"


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def secured(
    ingest: Ingest, clock: Clock, **limits: Any
) -> tuple[Ingest, Authenticator, CollectorRegistry]:
    tokens = [
        {"name": "checkout", "token": TOKEN, "scopes": ["ingest"], "tenant": "acme",
         **({"limits": limits} if limits else {})},
        {"name": "loner", "token": NO_TENANT, "scopes": ["ingest"]},
    ]  # fmt: skip
    registry = CollectorRegistry()
    auth = Authenticator(AuthConfig.model_validate({"tokens": tokens}), registry, clock=clock)
    ingest.auth = auth
    return ingest, auth, registry


def spans(valid: int, invalid: int = 0, forged: list[tuple[str, str]] | None = None) -> bytes:
    request = ExportTraceServiceRequest()
    group = request.resource_spans.add()
    for key, value in forged or []:
        group.resource.attributes.add(key=key).value.string_value = value
    scope = group.scope_spans.add()
    for i in range(valid):
        scope.spans.add(trace_id=os.urandom(16), span_id=os.urandom(8), name=f"ok-{i}")
    for i in range(invalid):
        scope.spans.add(trace_id=b"short", span_id=os.urandom(8), name=f"bad-{i}")
    return request.SerializeToString()


def resource_attributes(queue: Any) -> list[list[tuple[str, str]]]:
    return [
        [(a.key, a.value.string_value) for a in rs.resource.attributes]
        for batch in queue._pending
        for rs in batch.request.resource_spans
    ]


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (TOKEN, [("otelgate.auth.name", "checkout"), ("otelgate.tenant", "acme")]),
        (NO_TENANT, [("otelgate.auth.name", "loner")]),  # a forged tenant goes too
    ],
)
async def test_every_forged_copy_is_replaced(token: str, expected: list[tuple[str, str]]):
    ingest, queue, _ = make_ingest()
    ingest, _, _ = secured(ingest, Clock())
    forged = [("otelgate.tenant", "victim"), ("otelgate.auth.name", "admin"),
              ("otelgate.tenant", "victim2"), ("service.name", "checkout")]  # fmt: skip
    who = ingest.identify(Signal.TRACES, f"Bearer {token}", None)
    await ingest.receive(Signal.TRACES, spans(2, forged=forged), "protobuf", who)
    [attributes] = resource_attributes(queue)
    assert attributes == [("service.name", "checkout"), *expected]
    batch = queue._pending[0]
    assert batch.encoded is not None  # spliced into the received bytes
    assert ExportTraceServiceRequest.FromString(batch.encoded) == batch.request


async def test_a_large_request_mostly_invalid_is_counted_not_crashed():
    """Found in review: the pieces path subtracted the invalid items twice (a negative count
    raised after the data was delivered: a 500 and a duplicate on retry)."""
    ingest, queue, _metrics_registry = make_ingest()
    ingest, _, registry = secured(ingest, Clock())
    who = ingest.identify(Signal.TRACES, f"Bearer {TOKEN}", None)
    response = await ingest.receive(Signal.TRACES, spans(100, invalid=12_000), "protobuf", who)
    assert response.partial_success.rejected_spans == 12_000  # type: ignore[union-attr]
    assert len(queued_names(queue)) == 100
    labels = {"name": "checkout", "signal": "traces", "outcome": "accepted"}
    assert registry.get_sample_value("otelgate_auth_items_total", labels) == 100


async def test_waiting_the_retry_after_is_enough_for_the_same_request():
    ingest, _, _ = make_ingest()
    clock = Clock()
    ingest, _auth, _ = secured(ingest, clock, items_per_second=10, burst=1)
    who = ingest.identify(Signal.TRACES, f"Bearer {TOKEN}", None)
    await ingest.receive(Signal.TRACES, spans(25), "protobuf", who)  # a full bucket, 15 in debt
    with pytest.raises(RateLimitedError) as first:  # refused before its body is read
        ingest.identify(Signal.TRACES, f"Bearer {TOKEN}", None)
    wait = first.value.retry_after or 0.0
    assert wait == pytest.approx(2.5)  # 25 items need a full bucket again
    clock.now += wait
    who = ingest.identify(Signal.TRACES, f"Bearer {TOKEN}", None)
    await ingest.receive(Signal.TRACES, spans(25), "protobuf", who)


def test_grpc_retry_info_never_says_less_than_the_wait():
    status = refusal_status(RateLimitedError("slow down", retry_after=0.42857))
    info = RetryInfo()
    assert status.details[0].Unpack(info)
    assert info.retry_delay.ToMilliseconds() == 429  # rounded up, not down to 428


async def test_a_request_refused_after_its_charge_gets_its_tokens_back():
    registry = CollectorRegistry()

    class Full:
        def check_room(self, items: int, nbytes: int) -> None:
            raise BackpressureError("queue full")

        async def consume(self, batch: Any, checked: bool = False) -> None:
            raise BackpressureError("queue full")

    ingest = Ingest("http", {Signal.TRACES: Full()}, GatewayMetrics(registry))  # type: ignore[dict-item]
    ingest, _auth, _ = secured(ingest, Clock(), items_per_second=10, burst=1)
    who = ingest.identify(Signal.TRACES, f"Bearer {TOKEN}", None)
    for _ in range(3):  # refused for backpressure each time, never for its rate
        with pytest.raises(BackpressureError):
            await ingest.receive(Signal.TRACES, spans(8), "protobuf", who)
    assert who.limits[0].items is not None and who.limits[0].items.tokens == pytest.approx(10)
