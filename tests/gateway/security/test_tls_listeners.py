"""TLS and mTLS on a running in-process gateway, with real clients: the OpenTelemetry SDK's
OTLP/gRPC and OTLP/HTTP exporters, httpx on the admin listener, grpc channels. What the TLS
layer refuses never reaches the receivers, so it is counted neither as accepted nor refused."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import yaml
from opentelemetry.sdk.trace.export import SpanExportResult
from prometheus_client import CollectorRegistry
from starlette.types import Receive, Scope, Send

from gateway.config.loading import parse_config
from gateway.listeners.connection_metrics import ConnectionMetrics
from gateway.listeners.http_guard import ConnectionGuard, HttpLimits
from gateway.listeners.http_server import EmbeddedServer
from gateway.listeners.settings import HttpListenerSettings
from gateway.security.tls import (
    GrpcTlsSettings,
    TlsSettings,
    peer_subject_from_grpc,
    subject_of_certificate,
)
from gateway.security.tls_context import ServerTls
from gateway.service import Gateway
from tests.support.certs import Issued, TestCa
from tests.support.gateway_process import GatewayProcess
from tests.support.tls_clients import (
    client_context,
    finished_spans,
    grpc_export,
    http_export,
    https_probe,
)

pytestmark = pytest.mark.timeout(90)
SUCCESS, FAILURE = SpanExportResult.SUCCESS, SpanExportResult.FAILURE


@dataclass
class Pki:
    ca: TestCa
    other: TestCa  # a second CA the gateway does not trust
    server: Issued
    client: Issued  # CN=checkout,O=Acme from ca

    def tls(self, mutual: bool = False, **more: Any) -> dict[str, Any]:
        settings = {"cert_file": str(self.server.cert_file), "key_file": str(self.server.key_file)}
        if mutual:
            settings["client_ca_file"] = str(self.ca.ca_file)
        return {**settings, **more}


@pytest.fixture(autouse=True)
def _no_ca_bundle_override(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests lets these variables win over a session's ``verify``, which is where the SDK's
    # OTLP/HTTP exporter puts its ``certificate_file``: with them set it would be ignored.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = TestCa(tmp_path, "ca")
    return Pki(ca, TestCa(tmp_path, "other"), ca.server(), ca.client("checkout", "Acme"))


class Running:
    """An in-process gateway with OTLP/gRPC, OTLP/HTTP and admin on free 127.0.0.1 ports."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        grpc_receiver = getattr(gateway.receivers["otlp"], "grpc", None)
        assert grpc_receiver is not None and grpc_receiver.port is not None
        self.grpc_port: int = grpc_receiver.port
        self.http_url = f"https://127.0.0.1:{gateway.http_servers[0].port}/v1/traces"
        self.admin_port = gateway.admin_server.port

    def counted(self) -> dict[str, float]:
        """Accepted and refused items and refused requests, per transport (non-zero only)."""
        found: dict[str, float] = {}
        for family in self.gateway.registry.collect():
            if family.name.startswith("otelgate_receiver_") and family.type == "counter":
                for sample in family.samples:
                    if sample.name.endswith("_total") and sample.value:
                        key = f"{family.name}/{sample.labels.get('transport')}"
                        found[key] = found.get(key, 0.0) + sample.value
        return found


Start = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
    started: list[Gateway] = []

    async def run(grpc_tls: Any = None, http_tls: Any = None, admin_tls: Any = None) -> Running:
        def listener(tls: Any) -> dict[str, Any]:
            return {"endpoint": "127.0.0.1:0", **({"tls": tls} if tls else {})}

        data = {
            "receivers": {
                "otlp": {"protocols": {"grpc": listener(grpc_tls), "http": listener(http_tls)}}
            },
            "exporters": {"file": {"path": str(tmp_path / "out" / "traces.jsonl")}},
            "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file"]}}},
            "admin": listener(admin_tls),
        }
        gateway = Gateway(parse_config(yaml.safe_dump(data), environ={}))
        started.append(gateway)
        await gateway.start()
        return Running(gateway)

    yield run
    for gateway in started:
        await gateway.stop(drain_timeout=1.0)


async def test_tls_with_the_right_ca_is_accepted_and_counted(start: Start, pki: Pki) -> None:
    running = await start(grpc_tls=pki.tls(), http_tls=pki.tls())
    spans = finished_spans(3)
    ca = pki.ca.ca_file
    assert await asyncio.to_thread(grpc_export, running.grpc_port, spans, ca) == SUCCESS
    assert await asyncio.to_thread(http_export, running.http_url, spans[:2], ca) == SUCCESS
    assert running.counted() == {
        "otelgate_receiver_accepted_items/grpc": 3.0,
        "otelgate_receiver_accepted_items/http": 2.0,
    }


async def test_plaintext_and_distrusting_clients_get_nothing_through(
    start: Start, pki: Pki
) -> None:
    running = await start(grpc_tls=pki.tls(), http_tls=pki.tls())
    spans = finished_spans(2)
    plain_http = running.http_url.replace("https://", "http://")
    other_ca = pki.other.ca_file
    attempts = [
        asyncio.to_thread(grpc_export, running.grpc_port, spans, None, insecure=True, timeout=1),
        asyncio.to_thread(http_export, plain_http, spans, None, timeout=1),
        asyncio.to_thread(grpc_export, running.grpc_port, spans, other_ca, timeout=1),
        asyncio.to_thread(http_export, running.http_url, spans, other_ca, timeout=1),
    ]
    assert await asyncio.gather(*attempts) == [FAILURE] * 4
    assert running.counted() == {}


async def test_mtls_requires_a_valid_client_certificate(start: Start, pki: Pki) -> None:
    running = await start(grpc_tls=pki.tls(mutual=True), http_tls=pki.tls(mutual=True))
    spans = finished_spans(2)
    ca = pki.ca.ca_file
    foreign = pki.other.client("checkout", "Acme")  # same subject, wrong issuer
    expired = pki.ca.client("old", "Acme", expired=True)
    for client in (None, foreign, expired):
        attempts = [
            asyncio.to_thread(grpc_export, running.grpc_port, spans, ca, client, timeout=1),
            asyncio.to_thread(http_export, running.http_url, spans, ca, client, timeout=1),
        ]
        assert await asyncio.gather(*attempts) == [FAILURE, FAILURE], client
    assert running.counted() == {}
    assert await asyncio.to_thread(grpc_export, running.grpc_port, spans, ca, pki.client) == SUCCESS
    assert await asyncio.to_thread(http_export, running.http_url, spans, ca, pki.client) == SUCCESS
    assert running.counted() == {
        "otelgate_receiver_accepted_items/grpc": 2.0,
        "otelgate_receiver_accepted_items/http": 2.0,
    }


async def test_admin_listener_over_mtls(start: Start, pki: Pki) -> None:
    running = await start(admin_tls=pki.tls(mutual=True))
    url = f"https://127.0.0.1:{running.admin_port}/health/live"
    trusted = client_context([pki.ca.ca_file], pki.client)
    async with httpx.AsyncClient(verify=trusted, timeout=5) as client:
        response = await client.get(url)
    assert response.status_code == 200
    for context in (client_context([pki.ca.ca_file]), client_context([pki.other.ca_file])):
        async with httpx.AsyncClient(verify=context, timeout=5) as client:
            with pytest.raises(httpx.TransportError):
                await client.get(url)
    async with httpx.AsyncClient(timeout=5) as client:
        with pytest.raises(httpx.TransportError):
            await client.get(url.replace("https://", "http://"))


async def test_admin_listener_over_tls_without_client_certificates(start: Start, pki: Pki) -> None:
    running = await start(admin_tls=pki.tls(min_version="1.3"))
    context = client_context([pki.ca.ca_file])
    async with httpx.AsyncClient(verify=context, timeout=5) as client:
        response = await client.get(f"https://127.0.0.1:{running.admin_port}/health/live")
    assert response.status_code == 200
    probe = await asyncio.to_thread(https_probe, running.admin_port, context)
    assert probe.version == "TLSv1.3"
    assert probe.server_subject == pki.server.subject


async def test_min_version_1_3_refuses_a_tls_1_2_client(start: Start, pki: Pki) -> None:
    running = await start(http_tls=pki.tls(min_version="1.3"))
    port = running.gateway.http_servers[0].port
    tls12 = client_context([pki.ca.ca_file], max_version=ssl.TLSVersion.TLSv1_2)
    probe = await asyncio.to_thread(https_probe, port, tls12)
    # asyncio closes a failed handshake without flushing OpenSSL's alert: the client sees EOF.
    assert not probe.ok and probe.server_subject is None, probe
    tls13 = client_context([pki.ca.ca_file])
    assert (await asyncio.to_thread(https_probe, port, tls13)).version == "TLSv1.3"


# --- what the authentication sees -----------------------------------------------------------


async def echo_tls(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers the request's TLS extension as JSON (null when the scope has none)."""
    body = json.dumps(scope.get("extensions", {}).get("tls")).encode()
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"text/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def echo_server(tls: TlsSettings | None) -> EmbeddedServer:
    settings = HttpListenerSettings(endpoint="127.0.0.1:0")
    guard = ConnectionGuard(
        "test/tls", HttpLimits.of(settings), ConnectionMetrics(CollectorRegistry())
    )
    return EmbeddedServer("test/tls", echo_tls, "127.0.0.1:0", guard, tls=tls)


async def test_http_scope_carries_the_asgi_tls_extension(pki: Pki) -> None:
    server = echo_server(TlsSettings.model_validate(pki.tls(mutual=True)))
    plain = echo_server(None)
    await server.start()
    await plain.start()
    try:
        context = client_context([pki.ca.ca_file], pki.client)
        async with httpx.AsyncClient(verify=context, timeout=5) as client:
            first = (await client.get(f"https://127.0.0.1:{server.port}/")).json()
            second = (await client.get(f"https://127.0.0.1:{server.port}/again")).json()
            unencrypted = (await client.get(f"http://127.0.0.1:{plain.port}/")).json()
    finally:
        await server.stop(timeout=1)
        await plain.stop(timeout=1)
    assert first == second  # every request of the connection gets it
    assert first["client_cert_name"] == "CN=checkout,O=Acme" == pki.client.subject
    assert first["client_cert_chain"] == [pki.client.cert_pem.decode()]
    assert subject_of_certificate(first["client_cert_chain"][0]) == first["client_cert_name"]
    assert first["tls_version"] == 0x0304 and isinstance(first["cipher_suite"], int)
    assert (first["client_cert_error"], first["server_cert"]) == (None, None)
    assert unencrypted is None


async def test_http_scope_without_client_certificate(pki: Pki) -> None:
    server = echo_server(TlsSettings.model_validate(pki.tls()))
    await server.start()
    try:
        context = client_context([pki.ca.ca_file], pki.client)  # offered but never asked for
        async with httpx.AsyncClient(verify=context, timeout=5) as client:
            found = (await client.get(f"https://127.0.0.1:{server.port}/")).json()
    finally:
        await server.stop(timeout=1)
    assert (found["client_cert_name"], found["client_cert_chain"]) == (None, [])


async def test_grpc_peer_subject_is_the_same_string_as_http(pki: Pki) -> None:
    async def whoami(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return json.dumps(peer_subject_from_grpc(context)).encode()

    results = []
    for mutual in (True, False):
        tls = ServerTls("test/grpc", GrpcTlsSettings.model_validate(pki.tls(mutual=mutual)))
        tls.load()
        server = grpc.aio.server()
        method = grpc.unary_unary_rpc_method_handler(whoami)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("test.Who", {"Ami": method}),)
        )
        port = server.add_secure_port("127.0.0.1:0", tls.grpc_credentials())
        await server.start()
        try:
            credentials = grpc.ssl_channel_credentials(
                pki.ca.pem, pki.client.key_pem, pki.client.cert_pem
            )
            async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
                answer = await channel.unary_unary("/test.Who/Ami")(b"", timeout=5)
            results.append(json.loads(answer))
        finally:
            await server.stop(0)
    assert results == [subject_of_certificate(pki.client.cert_pem), None]
    assert results[0] == "CN=checkout,O=Acme"


@pytest.mark.e2e
def test_otelgate_run_serves_mtls(tmp_path: Path, pki: Pki) -> None:
    """The real process (on uvloop, its default loop) with mTLS on both OTLP listeners."""
    config = {
        "exporters": {"file": {"path": str(tmp_path / "traces.jsonl")}},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file"]}}},
    }
    tls = {"tls": pki.tls(mutual=True)}
    options = {"grpc": tls, "http": tls}
    with GatewayProcess(config, tmp_path, protocol_options=options) as gateway:
        spans, ca = finished_spans(2), pki.ca.ca_file
        url = f"https://127.0.0.1:{gateway.http_port}/v1/traces"
        assert grpc_export(gateway.grpc_port, spans, ca, timeout=1) == FAILURE
        assert http_export(url, spans, ca, timeout=1) == FAILURE
        assert grpc_export(gateway.grpc_port, spans, ca, pki.client) == SUCCESS
        assert http_export(url, spans[:1], ca, pki.client) == SUCCESS
        accepted = "otelgate_receiver_accepted_items_total"
        assert gateway.metric(accepted, signal="traces", transport="grpc") == 2
        assert gateway.metric(accepted, signal="traces", transport="http") == 1
