"""Property-based fuzzing of the real gateway (issue 9): nested values up to and past the
limit, huge counts of tiny items, multi-member and truncated compression, mutated bodies.
Whatever arrives: no 5xx, an answer within the timeout, and every item accepted reaches the
sink, so the gateway's accepted count equals what was delivered."""

from __future__ import annotations

import gzip
import json as json_module
import os
from collections.abc import Callable, Iterator

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.otlp.batch import Signal
from gateway.otlp.json_codec import encode_json
from tests.e2e.conftest import forward_config
from tests.support.gateway_process import GatewayProcess
from tests.support.hostile import (
    deep_traces_json,
    deep_traces_protobuf,
    empty_groups,
    gzip_members,
    tiny_spans,
)
from tests.support.otlp_samples import sample_request
from tests.support.otlp_sink import OtlpSink

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PROTOBUF = "application/x-protobuf"
JSON = "application/json"


@pytest.fixture
def target(
    sink: OtlpSink, start_gateway: Callable[..., GatewayProcess]
) -> Iterator[tuple[GatewayProcess, httpx.Client]]:
    """One gateway for all examples of a test; at the end, accepted == delivered."""
    gateway = start_gateway(forward_config(sink))
    with httpx.Client(base_url=gateway.http_endpoint, timeout=30) as client:
        yield gateway, client
    accepted = sum(
        gateway.metric("otelgate_receiver_accepted_items_total", signal=s.value, transport="http")
        for s in Signal
    )
    assert sink.wait_for(lambda s: sum(s.item_count(x) for x in Signal) >= accepted, 30)
    assert sum(sink.item_count(s) for s in Signal) == accepted


def post(client: httpx.Client, body: bytes, kind: str, encoding: str | None = None) -> int:
    headers = {"Content-Type": kind}
    if encoding:
        headers["Content-Encoding"] = encoding
    status = client.post("/v1/traces", content=body, headers=headers).status_code
    assert status < 500 or status == 503, status  # 503 only as load shedding, with Retry-After
    return status


@FUZZ
@given(depth=st.integers(0, 120), kind=st.sampled_from(["kvlist", "array"]), json=st.booleans(),
       invalid_leaf=st.booleans())  # fmt: skip
def test_nested_values_up_to_and_past_the_limit(target, depth, kind, json, invalid_leaf) -> None:
    _, client = target
    limit = {"kvlist": 31, "array": 47}[kind]
    if json:
        # stdlib json: orjson cannot write more than 255 levels; the gateway must still refuse
        body = json_module.dumps(deep_traces_json(depth, kind, invalid_leaf)).encode()
        expected = 400 if depth > limit or invalid_leaf else 200
        assert post(client, body, JSON) == expected
    else:
        assert post(client, deep_traces_protobuf(depth, kind), PROTOBUF) == (
            200 if depth <= limit else 400
        )


@FUZZ
@given(empty=st.integers(0, 400_000), spans=st.integers(0, 40_000), gzipped=st.booleans())
def test_huge_counts_of_tiny_items(target, empty, spans, gzipped) -> None:
    _, client = target
    body = empty_groups(empty) + tiny_spans(spans) if spans else empty_groups(empty)
    if gzipped:
        assert post(client, gzip.compress(body, 1), PROTOBUF, "gzip") == 200
    else:
        assert post(client, body, PROTOBUF) == 200


@FUZZ
@given(
    counts=st.lists(st.integers(1, 40), min_size=1, max_size=4),
    cut=st.integers(0, 30),
    junk=st.binary(max_size=8),
)
def test_multi_member_and_truncated_gzip(target, counts, cut, junk) -> None:
    _, client = target
    members = [sample_request(Signal.TRACES, n).SerializeToString() for n in counts]
    body = gzip_members(*members)
    body = body[: len(body) - cut] + junk
    status = post(client, body, PROTOBUF, "gzip")
    assert status in (200, 400)
    if cut == 0 and not junk:
        assert status == 200


@FUZZ
@given(
    signal=st.sampled_from(list(Signal)),
    json=st.booleans(),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 50),
)
def test_mutated_bodies(target, signal, json, flips, cut) -> None:
    _, client = target
    request = sample_request(signal, 4)
    body = bytearray(orjson.dumps(orjson.loads(_json(request))) if json else _protobuf(request))
    for position, value in flips:
        body[position % len(body)] = value
    body = body[: max(1, len(body) - cut)]
    headers = {"Content-Type": JSON if json else PROTOBUF}
    status = client.post(f"/v1/{signal.value}", content=bytes(body), headers=headers).status_code
    assert status in (200, 400), status


def _protobuf(request: object) -> bytes:
    return request.SerializeToString()  # type: ignore[attr-defined]


def _json(request: object) -> bytes:
    return encode_json(request)  # type: ignore[arg-type]


def test_random_bytes_never_5xx(target) -> None:
    _, client = target
    for size in (0, 1, 7, 100, 5000, 70_000, 2_000_000):
        for kind in (PROTOBUF, JSON):
            assert post(client, os.urandom(size), kind) in (200, 400, 413)
