"""Every Content-Encoding the Collector's otlphttp exporter and the Python exporters send
reaches the backend through the real gateway; bombs are refused cheaply (issue 10, finding 10).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable

import cramjam
import grpc
import httpx
import pytest
import zstandard
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from gateway.otlp.batch import Signal
from tests.e2e.conftest import forward_config
from tests.support.gateway_process import GatewayProcess
from tests.support.otlp_samples import sample_request
from tests.support.otlp_sink import OtlpSink

PROTOBUF = "application/x-protobuf"
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
LIMIT = 4 * 1024 * 1024


def zstd_stream(data: bytes) -> bytes:
    compressor = zstandard.ZstdCompressor().compressobj()
    return compressor.compress(data) + compressor.flush()


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


# (Content-Encoding, how the body is compressed): what Go's confighttp writes for each
# (zstd stream, snappy block since v0.125 and framed before it, zlib for deflate), plus
# several zstd frames and a raw deflate stream.
SENDS: list[tuple[str, Callable[[bytes], bytes]]] = [
    ("zstd", zstandard.ZstdCompressor().compress),
    ("zstd", lambda data: zstd_stream(data[:100]) + zstd_stream(data[100:])),
    ("snappy", lambda data: bytes(cramjam.snappy.compress_raw(data))),
    ("snappy", lambda data: bytes(cramjam.snappy.compress(data))),
    ("x-snappy-framed", lambda data: bytes(cramjam.snappy.compress(data))),
    ("deflate", zlib.compress),
    ("deflate", raw_deflate),
    ("zlib", zlib.compress),
]


@pytest.fixture
def gateway(sink: OtlpSink, start_gateway: Callable[..., GatewayProcess]) -> GatewayProcess:
    limits = {"max_request_body_size": LIMIT, "max_decompressed_size": LIMIT}
    return start_gateway(forward_config(sink), protocol_options={"http": limits})


def test_every_encoding_delivers_its_spans(gateway: GatewayProcess, sink: OtlpSink) -> None:
    body = sample_request(Signal.TRACES, 5).SerializeToString()
    for encoding, compress in SENDS:
        answer = httpx.post(
            f"{gateway.http_endpoint}/v1/traces",
            content=compress(body),
            headers={"Content-Type": PROTOBUF, "Content-Encoding": encoding},
            timeout=10,
        )
        assert answer.status_code == 200, (encoding, answer.content)
    expected = 5 * len(SENDS)
    assert sink.wait_for(lambda s: s.item_count(Signal.TRACES) >= expected, 15)
    assert sink.item_count(Signal.TRACES) == expected


def test_the_python_exporter_with_deflate(gateway: GatewayProcess, sink: OtlpSink) -> None:
    """The real OTLP/HTTP exporter (it offers none, gzip and deflate; deflate is zlib)."""
    exporter = OTLPSpanExporter(
        endpoint=f"{gateway.http_endpoint}/v1/traces", compression=Compression.Deflate
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "deflater"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("e2e")
    for i in range(3):
        with tracer.start_as_current_span(f"deflated-{i}"):
            pass
    provider.shutdown()
    names = {f"deflated-{i}" for i in range(3)}
    assert sink.wait_for(lambda s: names <= {span.name for span in s.spans()}, 15)


def test_grpc_takes_gzip_and_deflate(gateway: GatewayProcess, sink: OtlpSink) -> None:
    """grpc core decompresses the message encodings it knows (gzip, deflate) itself."""
    body = sample_request(Signal.TRACES, 2).SerializeToString()
    for compression in (grpc.Compression.Gzip, grpc.Compression.Deflate):
        with grpc.insecure_channel(gateway.grpc_endpoint, compression=compression) as channel:
            channel.unary_unary(EXPORT)(body, timeout=10)
    assert sink.wait_for(lambda s: s.item_count(Signal.TRACES) >= 4, 15)


BOMBS: dict[str, Callable[[], bytes]] = {  # small bodies inflating to 16-32x the limit
    "zstd": lambda: zstd_stream(b"abcdefgh" * (16 * 1024 * 1024)),
    "snappy": lambda: bytes(cramjam.snappy.compress(b"\0" * (16 * LIMIT))),
    "deflate": lambda: zlib.compress(b"\0" * (32 * LIMIT), 9),
}


@pytest.mark.parametrize("encoding", BOMBS)
def test_bombs_are_413_and_junk_is_400(
    gateway: GatewayProcess, sink: OtlpSink, encoding: str
) -> None:
    bomb = BOMBS[encoding]()
    url = f"{gateway.http_endpoint}/v1/traces"
    headers = {"Content-Type": PROTOBUF, "Content-Encoding": encoding}
    started = time.monotonic()
    refused = httpx.post(url, content=bomb, headers=headers, timeout=10)
    assert refused.status_code == 413
    assert time.monotonic() - started < 2
    assert "decompressed body exceeds" in Status.FromString(refused.content).message
    junk = httpx.post(url, content=b"\x28\xb5\x2f\xfd junk", headers=headers, timeout=10)
    assert junk.status_code == 400
    assert f"invalid {encoding}" in Status.FromString(junk.content).message
    unknown = httpx.post(url, content=b"x", headers={**headers, "Content-Encoding": "br"})
    assert unknown.status_code == 415
    assert "zstd, snappy" in Status.FromString(unknown.content).message
    ok = sample_request(Signal.TRACES, 1).SerializeToString()
    assert httpx.post(url, content=ok, headers={"Content-Type": PROTOBUF}).status_code == 200
    assert sink.wait_for(lambda s: s.item_count(Signal.TRACES) == 1, 10)
