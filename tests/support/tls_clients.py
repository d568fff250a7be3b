"""TLS clients for tests: the OpenTelemetry SDK's OTLP exporters over TLS/mTLS, raw handshakes
that report what the server presented, and atomic replacement of certificate files.

Everything here blocks: call it with ``asyncio.to_thread`` when the server runs in the test's
event loop.
"""

from __future__ import annotations

import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.certs import Issued


def finished_spans(count: int, service: str = "tls-test") -> list[ReadableSpan]:
    """``count`` ended spans made by the SDK, ready for an exporter."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.tls")
    for i in range(count):
        with tracer.start_as_current_span(f"op-{i}"):
            pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def grpc_export(
    port: int,
    spans: list[ReadableSpan],
    ca_file: Path | None,
    client: Issued | None = None,
    *,
    insecure: bool = False,
    timeout: float = 3.0,
    headers: dict[str, str] | None = None,
) -> SpanExportResult:
    """Export with the SDK's OTLP/gRPC exporter: plaintext when ``insecure``, else TLS trusting
    ``ca_file`` and presenting ``client``'s certificate when given; ``headers`` as metadata."""
    if insecure:
        exporter = GrpcSpanExporter(
            endpoint=f"127.0.0.1:{port}", insecure=True, timeout=timeout, headers=headers
        )
    else:
        assert ca_file is not None
        credentials = grpc.ssl_channel_credentials(
            ca_file.read_bytes(),
            client.key_pem if client else None,
            client.cert_pem if client else None,
        )
        exporter = GrpcSpanExporter(
            endpoint=f"127.0.0.1:{port}",
            insecure=False,
            credentials=credentials,
            timeout=timeout,
            headers=headers,
        )
    try:
        return exporter.export(spans)
    finally:
        exporter.shutdown()


def http_export(
    url: str,
    spans: list[ReadableSpan],
    ca_file: Path | None,
    client: Issued | None = None,
    *,
    timeout: float = 3.0,
    headers: dict[str, str] | None = None,
) -> SpanExportResult:
    """Export with the SDK's OTLP/HTTP exporter to ``url`` (``https://.../v1/traces``)."""
    exporter = HttpSpanExporter(
        endpoint=url,
        headers=headers,
        certificate_file=str(ca_file) if ca_file else None,
        client_key_file=str(client.key_file) if client else None,
        client_certificate_file=str(client.cert_file) if client else None,
        timeout=timeout,
    )
    try:
        return exporter.export(spans)
    finally:
        exporter.shutdown()


def client_context(
    ca_files: list[Path],
    client: Issued | None = None,
    max_version: ssl.TLSVersion | None = None,
) -> ssl.SSLContext:
    """A client SSLContext trusting ``ca_files`` and presenting ``client`` when given."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    for ca_file in ca_files:
        context.load_verify_locations(ca_file)
    if client is not None:
        context.load_cert_chain(client.cert_file, client.key_file)
    if max_version is not None:
        context.maximum_version = max_version
    return context


@dataclass
class Handshake:
    """What one connection saw: the server's certificate subject, or the error."""

    ok: bool
    server_subject: str | None = None
    status_line: bytes = b""
    session: ssl.SSLSession | None = None
    reused: bool = False
    version: str | None = None
    error: str = ""


def https_probe(
    port: int, context: ssl.SSLContext, session: ssl.SSLSession | None = None
) -> Handshake:
    """Connect, handshake and send one HTTP request: ``ok`` only if an HTTP answer came back
    (with TLS 1.3 a refused client certificate shows only after the handshake)."""
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1", session=session) as conn,
        ):
            der = conn.getpeercert(binary_form=True)
            assert der is not None
            subject = x509.load_der_x509_certificate(der).subject.rfc4514_string()
            conn.sendall(b"GET /health/live HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            try:
                answer = conn.recv(4096)
            except (OSError, ssl.SSLError) as exc:  # TLS 1.3: refused after the handshake
                return Handshake(False, subject, error=f"{type(exc).__name__}: {exc}")
            if not answer:
                return Handshake(False, subject, error="closed without an answer")
            status = answer.split(b"\r\n", 1)[0]
            return Handshake(
                True, subject, status, conn.session, bool(conn.session_reused), conn.version()
            )
    except (OSError, ssl.SSLError) as exc:
        return Handshake(False, error=f"{type(exc).__name__}: {exc}")


def replace_files(issued: Issued, cert_file: Path, key_file: Path) -> None:
    """Install ``issued`` at the given paths atomically (write aside, then rename)."""
    for source, target in ((issued.cert_pem, cert_file), (issued.key_pem, key_file)):
        aside = target.with_suffix(target.suffix + ".new")
        aside.write_bytes(source)
        os.replace(aside, target)


def replace_file(data: bytes, target: Path) -> None:
    """Write ``data`` to ``target`` atomically."""
    aside = target.with_suffix(target.suffix + ".new")
    aside.write_bytes(data)
    os.replace(aside, target)
