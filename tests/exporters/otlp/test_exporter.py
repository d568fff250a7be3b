"""OtlpExporter against a real OTLP sink over gRPC and HTTP/protobuf."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest

from exporters.otlp.exporter import OtlpExporter, TlsOptions, _grpc_target
from gateway.errors import PermanentError, RefusedDataError, RetryableError, ThrottledError
from gateway.otlp.batch import Batch, Signal
from tests.support.otlp_samples import sample_request
from tests.support.otlp_sink import OtlpSink
from tests.support.ports import free_port

PROTOCOLS = ["grpc", "http/protobuf"]


@pytest.fixture
def sink() -> Iterator[OtlpSink]:
    with OtlpSink() as running:
        yield running


def _endpoint(sink: OtlpSink, protocol: str) -> str:
    return sink.grpc_endpoint if protocol == "grpc" else sink.http_endpoint


@pytest.fixture(params=PROTOCOLS)
async def exporter(request: pytest.FixtureRequest, sink: OtlpSink) -> AsyncIterator[OtlpExporter]:
    exp = OtlpExporter(_endpoint(sink, request.param), request.param, timeout=5.0)
    await exp.start()
    yield exp
    await exp.shutdown()


def _batch(signal: Signal, items: int = 3) -> Batch:
    return Batch.from_request(signal, sample_request(signal, items))


async def test_content_arrives_equal_for_every_signal(
    exporter: OtlpExporter, sink: OtlpSink
) -> None:
    batches = [_batch(signal, 5) for signal in Signal]
    for batch in batches:
        await exporter.push(batch)
    received = sink.received
    assert [r.signal for r in received] == list(Signal)
    assert [r.request for r in received] == [b.request for b in batches]
    expected_transport = "grpc" if exporter.protocol == "grpc" else "http"
    assert {r.transport for r in received} == {expected_transport}
    assert len(sink.spans()) == 5 and len(sink.log_records()) == 5
    assert sink.data_points_count() == 5


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_gzip_and_headers(protocol: str, sink: OtlpSink) -> None:
    exp = OtlpExporter(
        _endpoint(sink, protocol),
        protocol,  # type: ignore[arg-type]
        compression="gzip",
        headers={"X-Tenant": "acme", "Authorization": "Bearer t0k"},
    )
    await exp.start()
    try:
        batch = _batch(Signal.LOGS, 50)
        await exp.push(batch)
    finally:
        await exp.shutdown()
    (item,) = sink.received
    assert item.request == batch.request
    assert item.headers["x-tenant"] == "acme"
    assert item.headers["authorization"] == "Bearer t0k"
    assert item.headers["user-agent"].startswith("otelgate/")
    if protocol == "http/protobuf":
        assert item.headers["content-encoding"] == "gzip"
        assert item.headers["content-type"] == "application/x-protobuf"


async def test_received_bytes_are_forwarded_as_is(exporter: OtlpExporter, sink: OtlpSink) -> None:
    # The cached bytes win over the message: proof that nothing was re-encoded.
    cached = sample_request(Signal.TRACES, 2).SerializeToString()
    batch = Batch(Signal.TRACES, sample_request(Signal.TRACES, 9), 9, encoded=cached)
    await exporter.push(batch)
    (item,) = sink.received
    assert item.body == cached
    assert len(sink.spans()) == 2


async def test_http_429_with_retry_after_is_throttled(sink: OtlpSink) -> None:
    sink.fail_next(1, http_status=429, retry_after="7")
    exp = OtlpExporter(sink.http_endpoint, "http/protobuf")
    await exp.start()
    try:
        with pytest.raises(ThrottledError) as info:
            await exp.push(_batch(Signal.TRACES))
        assert info.value.retry_after == 7.0
        assert "sink refused the request" in str(info.value)  # from the google.rpc.Status body
        await exp.push(_batch(Signal.TRACES))  # the next one goes through
    finally:
        await exp.shutdown()
    assert len(sink.refused) == 1 and len(sink.received) == 1


@pytest.mark.parametrize(
    ("status", "error", "retry_after"),
    [
        (400, RefusedDataError, None),
        (401, PermanentError, None),
        (413, RefusedDataError, None),
        (500, PermanentError, None),
        (502, RetryableError, None),
        (503, ThrottledError, None),
        (503, ThrottledError, 2.0),
        (504, RetryableError, None),
    ],
)
async def test_http_status_classification(
    sink: OtlpSink, status: int, error: type[Exception], retry_after: float | None
) -> None:
    sink.fail_next(
        1, http_status=status, retry_after=None if retry_after is None else str(retry_after)
    )
    exp = OtlpExporter(sink.http_endpoint, "http/protobuf")
    await exp.start()
    try:
        with pytest.raises(error) as info:
            await exp.push(_batch(Signal.METRICS))
    finally:
        await exp.shutdown()
    assert type(info.value) is error
    assert f"HTTP {status}" in str(info.value)
    if isinstance(info.value, RetryableError):
        assert info.value.retry_after == retry_after
    assert sink.received == []


@pytest.mark.parametrize(
    ("code", "retry_delay", "error"),
    [
        (grpc.StatusCode.UNAVAILABLE, None, RetryableError),
        (grpc.StatusCode.UNAVAILABLE, 1.25, RetryableError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 2.5, ThrottledError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, None, PermanentError),
        (grpc.StatusCode.INVALID_ARGUMENT, None, RefusedDataError),
        (grpc.StatusCode.UNAUTHENTICATED, None, PermanentError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, None, RetryableError),
    ],
)
async def test_grpc_status_classification(
    sink: OtlpSink, code: grpc.StatusCode, retry_delay: float | None, error: type[Exception]
) -> None:
    sink.fail_next(1, grpc_code=code, retry_delay=retry_delay)
    exp = OtlpExporter(sink.grpc_endpoint, "grpc")
    await exp.start()
    try:
        with pytest.raises(error) as info:
            await exp.push(_batch(Signal.LOGS))
        await exp.push(_batch(Signal.LOGS))
    finally:
        await exp.shutdown()
    assert type(info.value) is error
    assert code.name in str(info.value)
    if isinstance(info.value, RetryableError):
        assert info.value.retry_after == retry_delay
    assert isinstance(info.value.__cause__, grpc.aio.AioRpcError)
    assert len(sink.refused) == 1 and len(sink.received) == 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_nothing_listening_is_retryable(protocol: str) -> None:
    port = free_port()
    endpoint = f"127.0.0.1:{port}" if protocol == "grpc" else f"http://127.0.0.1:{port}"
    exp = OtlpExporter(endpoint, protocol, timeout=3.0)  # type: ignore[arg-type]
    await exp.start()
    try:
        with pytest.raises(RetryableError) as info:
            await exp.push(_batch(Signal.TRACES))
    finally:
        await exp.shutdown()
    assert type(info.value) is RetryableError
    assert info.value.__cause__ is not None


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_timeout_is_retryable(protocol: str, sink: OtlpSink) -> None:
    sink.delay = 2.0
    exp = OtlpExporter(_endpoint(sink, protocol), protocol, timeout=0.3)  # type: ignore[arg-type]
    await exp.start()
    try:
        with pytest.raises(RetryableError):
            await asyncio.wait_for(exp.push(_batch(Signal.TRACES)), 5)
    finally:
        await exp.shutdown()


async def test_partial_success_is_reported_and_counted(
    exporter: OtlpExporter, sink: OtlpSink, caplog: pytest.LogCaptureFixture
) -> None:
    sink.partial_success = (2, "2 spans had invalid ids")
    refused = await exporter.push(_batch(Signal.TRACES, 4))  # returns: must not be retried
    assert exporter.rejected_items == 2
    assert refused is not None and refused.items == 2
    assert refused.reason.endswith("rejected them: 2 spans had invalid ids")

    sink.partial_success = (0, "deprecated attribute")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="exporters.otlp"):
        await exporter.push(_batch(Signal.TRACES, 1))
    assert exporter.rejected_items == 2
    assert "deprecated attribute" in caplog.text


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_recovers_when_the_sink_comes_back_on_the_same_port(protocol: str) -> None:
    first = OtlpSink().start()
    grpc_port, http_port = first.grpc_port, first.http_port
    exp = OtlpExporter(_endpoint(first, protocol), protocol, timeout=2.0)  # type: ignore[arg-type]
    await exp.start()
    second: OtlpSink | None = None
    try:
        await exp.push(_batch(Signal.TRACES, 1))
        first.stop()
        with pytest.raises(RetryableError):
            await exp.push(_batch(Signal.TRACES, 1))
        second = OtlpSink(grpc_port=grpc_port, http_port=http_port).start()
        delivered = False
        for _ in range(40):  # bounded: about 10 s
            try:
                await exp.push(_batch(Signal.TRACES, 1))
            except RetryableError:
                await asyncio.sleep(0.25)
                continue
            delivered = True
            break
        assert delivered
        assert len(second.spans()) == 1
        assert len(first.spans()) == 1
    finally:
        await exp.shutdown()
        first.stop()
        if second is not None:
            second.stop()


async def test_push_before_start_is_a_programming_error(sink: OtlpSink) -> None:
    for protocol in PROTOCOLS:
        exp = OtlpExporter(_endpoint(sink, protocol), protocol)  # type: ignore[arg-type]
        with pytest.raises(RuntimeError):
            await exp.push(_batch(Signal.TRACES))


async def test_http_endpoint_without_scheme_and_trailing_slash(sink: OtlpSink) -> None:
    exp = OtlpExporter(sink.http_endpoint.removeprefix("http://") + "/", "http/protobuf")
    await exp.start()
    try:
        await exp.push(_batch(Signal.METRICS, 2))
    finally:
        await exp.shutdown()
    assert sink.data_points_count() == 2


def test_constructor_validation() -> None:
    with pytest.raises(ValueError):
        OtlpExporter("x:1", "http/json")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        OtlpExporter("x:1", "grpc", compression="zstd")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        OtlpExporter("x:1", "grpc", tls=TlsOptions(insecure_skip_verify=True))


def test_grpc_target_and_security() -> None:
    assert _grpc_target("https://collector:4317", None) == ("collector:4317", True)
    assert _grpc_target("http://collector:4317", TlsOptions()) == ("collector:4317", False)
    assert _grpc_target("collector:4317", None) == ("collector:4317", False)
    assert _grpc_target("collector:4317", TlsOptions()) == ("collector:4317", True)
    assert _grpc_target("collector:4317", TlsOptions(insecure=True)) == ("collector:4317", False)
