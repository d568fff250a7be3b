"""Property-based fuzzing of the OTLP/HTTP endpoint, in process (security issue: fuzzing).

The receiver's ASGI app is driven through ``httpx.ASGITransport`` with random and mutated
bodies, content types (parameters, odd casing, junk), content encodings (valid names over
garbage, stacked, unknown, bombs), extra headers, methods and paths. Every answer is 2xx or 4xx,
never 5xx, within :data:`TIMEOUT`; an error body is a ``google.rpc.Status`` in the request's
encoding; and the counters balance: an accepted request's items are counted accepted or
rejected (its ``partial_success``), exactly those reach the pipeline and read back, and a
refused request counts one refusal and nothing accepted. The real server (uvicorn's HTTP
parser, the connection guard) is fuzzed end to end by ``tests/e2e/test_fuzz.py``.
``OTELGATE_FUZZ_SCALE`` multiplies the examples for a longer local run.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import cramjam
import httpx
import pytest
import zstandard
from google.protobuf import json_format
from google.rpc.status_pb2 import Status
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from gateway.codecs.compression import decompress
from gateway.otlp.batch import Batch, Signal, count_items
from gateway.otlp.json_codec import encode_json
from gateway.pipeline import Router
from gateway.receivers.ingest import Ingest, build_response, decode
from gateway.receivers.otlp_http import OtlpHttpReceiver
from gateway.selfmetrics import GatewayMetrics
from tests.support.hostile import empty_groups, tiny_spans
from tests.support.otlp_samples import sample_request

SCALE = int(os.environ.get("OTELGATE_FUZZ_SCALE", "1"))
TIMEOUT = 10.0  # seconds for any one request; each takes milliseconds
MAX_BODY = 64 * 1024
MAX_DECOMPRESSED = 1024 * 1024
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
ACCEPTED = "otelgate_receiver_accepted_items_total"
REFUSED_ITEMS = "otelgate_receiver_refused_items_total"
REFUSED_REQUESTS = "otelgate_receiver_refused_requests_total"
FUZZ = settings(
    max_examples=500 * SCALE,
    deadline=None,  # each call is bounded by TIMEOUT instead
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Recorder(Router):
    """Takes every batch (always room) and keeps it for the test to read."""

    def __init__(self, signal: Signal) -> None:
        super().__init__(signal, ())
        self.batches: list[Batch] = []

    def check_room(self, items: int, nbytes: int) -> None:
        return None

    async def consume(self, batch: Batch, *, checked: bool = False) -> None:
        self.batches.append(batch)


@dataclass
class Answer:
    response: httpx.Response
    counted: defaultdict[str, float]  # what the request added to each counter
    batches: list[Batch]  # what reached the pipelines


class Gateway:
    """The receiver's app on one event loop, shared by all examples of the module."""

    def __init__(self, runner: asyncio.Runner) -> None:
        self.runner = runner
        self.registry = CollectorRegistry()
        self.recorders = {signal: Recorder(signal) for signal in Signal}
        ingest = Ingest("http", self.recorders, GatewayMetrics(self.registry))
        app = OtlpHttpReceiver(ingest, MAX_BODY, MAX_DECOMPRESSED).app()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://otlp"
        )

    def totals(self) -> defaultdict[str, float]:
        totals: defaultdict[str, float] = defaultdict(float)
        for family in self.registry.collect():
            for sample in family.samples:
                totals[sample.name] += sample.value
        return totals

    def send(self, method: str, path: str, body: bytes, headers: dict[str, Any]) -> Answer:
        before = self.totals()
        started = time.monotonic()
        call = self.client.request(method, path, content=body, headers=headers)
        response = self.runner.run(asyncio.wait_for(call, TIMEOUT))
        assert time.monotonic() - started < TIMEOUT
        after = self.totals()
        counted = defaultdict(float, {name: after[name] - before[name] for name in after})
        batches = [batch for recorder in self.recorders.values() for batch in recorder.batches]
        for recorder in self.recorders.values():
            recorder.batches.clear()
        return Answer(response, counted, batches)


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    with asyncio.Runner() as runner:
        gateway = Gateway(runner)
        yield gateway
        runner.run(gateway.client.aclose())


# --- what the client should see --------------------------------------------------------------


def answer_kind(content_type: str | None) -> str:
    """The encoding of the answer: the request's, JSON when it has none we know (OTLP spec)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return PROTOBUF if media in (PROTOBUF, "application/protobuf") else JSON


def read_status(response: httpx.Response, kind: str) -> Status:
    assert response.headers["content-type"] == kind
    if kind == PROTOBUF:
        return Status.FromString(response.content)
    return json_format.Parse(response.content, Status())


def check(answer: Answer, signal: Signal | None, kind: str) -> None:
    """No 5xx; a Status for errors; the counters balance with what reached the pipelines."""
    status = answer.response.status_code
    assert 200 <= status < 300 or 400 <= status < 500, status
    accepted = answer.counted[ACCEPTED]
    assert accepted == sum(batch.items for batch in answer.batches)
    for batch in answer.batches:  # what was accepted reads back from its bytes
        again = decode(batch.signal, batch.serialized(), "protobuf")
        assert count_items(batch.signal, again) == batch.items
    if status >= 400:
        assert read_status(answer.response, kind).code != 0
        assert accepted == 0 and answer.counted[REFUSED_ITEMS] == 0
        assert answer.counted[REFUSED_REQUESTS] == (0 if signal is None else 1)
        return
    assert status == 200 and signal is not None
    assert answer.response.headers["content-type"] == kind
    expected = build_response(signal, 0, "")
    if kind == PROTOBUF:
        expected.ParseFromString(answer.response.content)
    else:
        json_format.Parse(answer.response.content, expected)
    rejected = getattr(expected.partial_success, f"rejected_{signal.item_name}")
    assert answer.counted[REFUSED_ITEMS] == rejected
    assert answer.counted[REFUSED_REQUESTS] == 0


def items_in(signal: Signal, body: bytes, encoding: str | None, kind: str) -> int:
    """The items of an accepted ``body``, read as the gateway should have read it."""
    plain = decompress(body, encoding, MAX_DECOMPRESSED)
    return count_items(signal, decode(signal, plain, "json" if kind == JSON else "protobuf"))


# --- bodies, content types and encodings -----------------------------------------------------

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "zlib": zlib.compress,
    "zstd": zstandard.ZstdCompressor().compress,
    "snappy": lambda data: bytes(cramjam.snappy.compress_raw(data)),
    "x-snappy-framed": lambda data: bytes(cramjam.snappy.compress(data)),
}
printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=24)


def mix(*shares: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Values of each strategy in proportion to its share (``one_of`` flattens nested
    ``one_of`` branches, so the junk, having the most, would crowd out the rest)."""
    picks = [i for i, (share, _) in enumerate(shares) for _ in range(share)]
    return st.tuples(st.sampled_from(picks), *(strategy for _, strategy in shares)).map(
        lambda drawn: drawn[1 + drawn[0]]
    )


# Mostly what clients send, decorated (casing, parameters, spaces); sometimes anything at all.
valid_types = st.sampled_from([PROTOBUF, JSON])
decorated_types = st.sampled_from([
    "application/protobuf", "Application/X-Protobuf", "APPLICATION/JSON", "application/json;",
    " application/json ; charset=utf-8", "application/x-protobuf; proto=otlp",
])  # fmt: skip
junk_types = st.none() | printable | st.sampled_from([
    "application/jsonl", "application/json+x", "text/plain", "", ";", "multipart/form-data",
    "application/x-protobuf,application/json", "application/x-protobuf\tjson",
])  # fmt: skip
content_types = mix((4, valid_types), (2, decorated_types), (2, junk_types))
valid_encodings = st.sampled_from([*COMPRESSORS, "identity", "", "GZIP", " Zstd ", "Deflate"])
junk_encodings = printable | st.sampled_from([
    "br", "compress", "gzip, zstd", "gzip,gzip", "identity, gzip", "x-gzip", "snappy; q=1",
])  # fmt: skip
encodings = mix((3, st.none()), (3, valid_encodings), (2, junk_encodings))
bodies = st.sampled_from(["valid", "mutated", "random", "other_signal", "empty", "many"])
extra_headers = st.dictionaries(
    st.sampled_from(["content-length", "x-junk", "authorization", "transfer-encoding", "expect"]),
    st.sampled_from(["0", "1", "abc", "-1", "99999999999999999999", " 5", "chunked", "\t"])
    | printable,
    max_size=2,
)


def encoded(signal: Signal, items: int, kind: str) -> bytes:
    request = sample_request(signal, items)
    return encode_json(request) if kind == JSON else request.SerializeToString()


def make_body(signal: Signal, source: str, kind: str, seed: int, blob: bytes) -> bytes:
    if source == "valid":
        return encoded(signal, seed % 6, kind)
    if source == "mutated":
        body = bytearray(encoded(signal, 1 + seed % 4, kind))
        for i, byte in enumerate(blob):
            body[(seed + i * 7919) % len(body)] = byte
        return bytes(body[: len(body) - seed % 40])
    if source == "other_signal":
        others = [other for other in Signal if other is not signal]
        return encoded(others[seed % 2], 3, kind)
    if source == "many":  # past the fast path's entry limit: decoded in pieces
        return empty_groups(12_000) if seed % 2 else tiny_spans(11_000)
    return b"" if source == "empty" else blob


@FUZZ
@given(signal=st.sampled_from(list(Signal)), source=bodies, content_type=content_types,
       encoding=encodings, compress=st.booleans(), seed=st.integers(0, 10_000),
       blob=st.binary(max_size=300), headers=extra_headers)  # fmt: skip
def test_export_requests_answer_2xx_or_4xx_and_balance_the_counters(
    gateway: Gateway, signal: Signal, source: str, content_type: str | None,
    encoding: str | None, compress: bool, seed: int, blob: bytes, headers: dict[str, str],
) -> None:  # fmt: skip
    kind = answer_kind(content_type)
    body = make_body(signal, source, kind, seed, blob)
    name = (encoding or "").strip().lower()
    if compress and name in COMPRESSORS:
        body = COMPRESSORS[name](body)
    headers = dict(headers)
    if content_type is not None:
        headers["content-type"] = content_type
    if encoding is not None:
        headers["content-encoding"] = encoding
    answer = gateway.send("POST", f"/v1/{signal.value}", body, headers)
    check(answer, signal, kind)
    event(f"{source}: {answer.response.status_code}")  # the mix: --hypothesis-show-statistics
    well_formed = (compress and name in COMPRESSORS) or name in ("", "identity")
    if (
        source == "valid"
        and content_type in (PROTOBUF, JSON)
        and well_formed
        and not headers.keys() - {"content-type", "content-encoding"}
    ):
        assert answer.response.status_code == 200
    if answer.response.status_code == 200:  # every item counted: accepted or rejected
        expected = items_in(signal, body, encoding, kind)
        assert answer.counted[ACCEPTED] + answer.counted[REFUSED_ITEMS] == expected


@settings(max_examples=200 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "POST", "TRACE"]),
       path=st.sampled_from(["/v1/traces/", "/V1/Traces", "/v1/nope", "/", "//v1/logs", "/v1",
                             "/v1/metrics/../logs", "/v1/%74races", "/v1/logs?x=1"])
       | printable.map(lambda text: "/" + text.replace("#", "").replace("?", "")),
       content_type=content_types, body=st.binary(max_size=200))  # fmt: skip
def test_any_method_and_path_answers_2xx_or_4xx_with_a_status(
    gateway: Gateway, method: str, path: str, content_type: str | None, body: bytes
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    answer = gateway.send(method, path, body, headers)
    url = answer.response.request.url.path
    exports = {f"/v1/{signal.value}": signal for signal in Signal}
    signal = exports.get(url) if method == "POST" else None
    event(f"status {answer.response.status_code}")
    check(answer, signal, answer_kind(content_type))


def test_a_trailing_slash_is_a_404_not_a_redirect(gateway: Gateway) -> None:
    """Found by the fuzzer: ``POST /v1/traces/`` was answered 307 with no Status body and a
    ``Location`` built from the request's Host header (FastAPI's ``redirect_slashes``); the
    Collector's receiver answers 404, as this port does for any other unknown path."""
    headers = {"content-type": PROTOBUF, "host": "elsewhere.example"}
    answer = gateway.send("POST", "/v1/traces/", b"", headers)
    assert "location" not in answer.response.headers
    assert answer.response.status_code == 404
    check(answer, None, PROTOBUF)


@pytest.mark.parametrize("name", ["gzip", "zstd", "deflate", "snappy"])
def test_bombs_and_oversized_bodies_are_413_and_counted(gateway: Gateway, name: str) -> None:
    bomb = COMPRESSORS[name](bytes(MAX_DECOMPRESSED + 1))
    for body, encoding in ((bomb, name), (bytes(MAX_BODY + 1), None)):
        headers = {"content-type": PROTOBUF, **({"content-encoding": encoding} if encoding else {})}
        answer = gateway.send("POST", "/v1/logs", body, headers)
        assert answer.response.status_code == 413
        check(answer, Signal.LOGS, PROTOBUF)


def test_a_content_length_of_non_ascii_digits_is_not_a_crash(gateway: Gateway) -> None:
    """Found by probing: ``Content-Length: \\xb2`` (latin-1 '²', a digit to ``str.isdigit``)
    made ``int()`` raise out of ``read_body``: the app's answer was an exception (500). Behind
    uvicorn, httptools refuses the header first, so only other servers or mounts reach it."""
    headers = {"content-type": PROTOBUF, "content-length": b"\xb2"}
    answer = gateway.send("POST", "/v1/traces", b"", headers)
    check(answer, Signal.TRACES, PROTOBUF)
