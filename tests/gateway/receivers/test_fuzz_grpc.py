"""Property-based fuzzing of the OTLP/gRPC Export methods over a real ``grpc.aio`` channel on
127.0.0.1 (security issue: fuzzing the ingest path).

Random, mutated, other-signal, empty, oversized and many-entry bodies, sent as raw bytes with
random metadata and with or without gzip: the call ends within :data:`TIMEOUT` with OK,
INVALID_ARGUMENT, RESOURCE_EXHAUSTED or UNAVAILABLE, never INTERNAL or UNKNOWN; a refusal by
the gateway carries a ``google.rpc.Status`` with the same code in ``grpc-status-details-bin``;
and the counters balance as on the HTTP port (:mod:`tests.gateway.receivers.test_fuzz_http`).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import defaultdict
from collections.abc import Iterator

import grpc
import pytest
from google.rpc.status_pb2 import Status
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from gateway.otlp.batch import Signal, count_items
from gateway.receivers.ingest import Ingest, build_response, decode
from gateway.receivers.otlp_grpc import SERVICES, OtlpGrpcReceiver
from gateway.selfmetrics import GatewayMetrics
from tests.gateway.receivers.test_fuzz_http import (
    ACCEPTED,
    REFUSED_ITEMS,
    REFUSED_REQUESTS,
    Recorder,
)
from tests.support.hostile import empty_groups
from tests.support.otlp_samples import sample_request

SCALE = int(os.environ.get("OTELGATE_FUZZ_SCALE", "1"))
TIMEOUT = 10.0
MAX_MESSAGE = 256 * 1024
ALLOWED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNAVAILABLE,
}


class Gateway:
    """A gRPC receiver and a channel to it on one event loop, shared by the module's examples."""

    def __init__(self, runner: asyncio.Runner) -> None:
        self.runner = runner
        self.registry = CollectorRegistry()
        self.recorders = {signal: Recorder(signal) for signal in Signal}
        ingest = Ingest("grpc", self.recorders, GatewayMetrics(self.registry))
        self.receiver = OtlpGrpcReceiver(ingest, "127.0.0.1:0", MAX_MESSAGE)
        runner.run(self.receiver.start())
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.receiver.port}")

    def totals(self) -> defaultdict[str, float]:
        totals: defaultdict[str, float] = defaultdict(float)
        for family in self.registry.collect():
            for sample in family.samples:
                totals[sample.name] += sample.value
        return totals

    async def _call(
        self, signal: Signal, body: bytes, metadata: list[tuple[str, str]], gzip: bool
    ) -> tuple[grpc.StatusCode, bytes, tuple[tuple[str, str | bytes], ...]]:
        export = self.channel.unary_unary(f"/{SERVICES[signal]}/Export")
        compression = grpc.Compression.Gzip if gzip else None
        try:
            answer = await export(body, timeout=TIMEOUT, metadata=metadata, compression=compression)
        except grpc.aio.AioRpcError as exc:
            return exc.code(), b"", tuple(exc.trailing_metadata() or ())
        return grpc.StatusCode.OK, answer, ()

    def send(
        self, signal: Signal, body: bytes, metadata: list[tuple[str, str]], gzip: bool
    ) -> grpc.StatusCode:
        """One Export call, checked: code, Status details, counters (see the module doc)."""
        before = self.totals()
        started = time.monotonic()
        code, answer, trailers = self.runner.run(self._call(signal, body, metadata, gzip))
        assert time.monotonic() - started < TIMEOUT
        after = self.totals()
        counted = defaultdict(float, {name: after[name] - before[name] for name in after})
        batches = self.recorders[signal].batches[:]
        self.recorders[signal].batches.clear()
        assert code in ALLOWED, code
        assert counted[ACCEPTED] == sum(batch.items for batch in batches)
        for batch in batches:  # what was accepted reads back from its bytes
            again = decode(signal, batch.serialized(), "protobuf")
            assert count_items(signal, again) == batch.items
        if code is not grpc.StatusCode.OK:
            details = dict(trailers).get("grpc-status-details-bin")
            assert counted[ACCEPTED] == 0 and counted[REFUSED_ITEMS] == 0
            if details is None:  # refused by grpc core itself: over the message size limit
                assert code is grpc.StatusCode.RESOURCE_EXHAUSTED and len(body) > MAX_MESSAGE
                assert counted[REFUSED_REQUESTS] == 0
            else:
                assert isinstance(details, bytes)
                assert Status.FromString(details).code == code.value[0]
                assert counted[REFUSED_REQUESTS] == 1
            return code
        response = build_response(signal, 0, "")
        response.ParseFromString(answer)
        rejected = getattr(response.partial_success, f"rejected_{signal.item_name}")
        assert counted[REFUSED_ITEMS] == rejected and counted[REFUSED_REQUESTS] == 0
        assert counted[ACCEPTED] + rejected == count_items(signal, decode(signal, body, "protobuf"))
        return code

    def close(self) -> None:
        self.runner.run(self.channel.close())
        self.runner.run(self.receiver.stop(grace=0))


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    with asyncio.Runner() as runner:
        gateway = Gateway(runner)
        yield gateway
        gateway.close()


def make_body(signal: Signal, source: str, seed: int, blob: bytes) -> bytes:
    if source == "valid":
        return sample_request(signal, seed % 6).SerializeToString()
    if source == "mutated":
        body = bytearray(sample_request(signal, 1 + seed % 4).SerializeToString())
        for i, byte in enumerate(blob):
            body[(seed + i * 7919) % len(body)] = byte
        return bytes(body[: len(body) - seed % 40])
    if source == "other_signal":
        other = [s for s in Signal if s is not signal][seed % 2]
        return sample_request(other, 3).SerializeToString()
    if source == "oversized":
        return bytes(MAX_MESSAGE + 1 + seed)
    if source == "many":  # past the fast path's entry limit: decoded in pieces
        return empty_groups(12_000)
    return b"" if source == "empty" else blob


metadata = st.lists(
    st.tuples(
        st.sampled_from(["x-junk", "authorization", "content-encoding", "grpc-accept-encoding"]),
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=16),
    ),
    max_size=2,
)


@settings(
    max_examples=150 * SCALE,
    deadline=None,  # each call is bounded by TIMEOUT instead
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(signal=st.sampled_from(list(Signal)),
       source=st.sampled_from(["valid", "mutated", "random", "other_signal", "empty", "many",
                               "oversized"]),
       seed=st.integers(0, 10_000), blob=st.binary(max_size=300), metadata=metadata,
       gzip=st.booleans())  # fmt: skip
def test_export_calls_end_ok_or_with_a_client_code_and_balance_the_counters(
    gateway: Gateway, signal: Signal, source: str, seed: int, blob: bytes,
    metadata: list[tuple[str, str]], gzip: bool,
) -> None:  # fmt: skip
    code = gateway.send(signal, make_body(signal, source, seed, blob), metadata, gzip)
    event(f"{source}: {code.name}")  # the mix, with --hypothesis-show-statistics


@pytest.mark.parametrize("signal", list(Signal))
def test_valid_requests_are_accepted_whole(gateway: Gateway, signal: Signal) -> None:
    before = gateway.totals()[ACCEPTED]
    gateway.send(signal, sample_request(signal, 5).SerializeToString(), [], gzip=False)
    assert gateway.totals()[ACCEPTED] - before == count_items(signal, sample_request(signal, 5))
