"""Certificate reload without a restart (``tls.reload_interval``): replaced files take effect
for new handshakes (the server certificate and the client CAs, on HTTP and gRPC), a broken
replacement keeps the previous certificate and is logged once, and a TLS 1.2 session from
before a reload is not resumed past the new client CAs. Also on uvloop, the loop
``otelgate run`` uses by default."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.sdk.trace.export import SpanExportResult

from gateway.config.loading import parse_config
from gateway.security.tls import TlsSettings
from gateway.security.tls_context import ServerTls
from gateway.service import Gateway
from tests.gateway.security.test_tls_listeners import echo_server
from tests.support.certs import Issued, TestCa, write_unrelated_key
from tests.support.tls_clients import (
    Handshake,
    client_context,
    finished_spans,
    grpc_export,
    https_probe,
    replace_file,
    replace_files,
)

pytestmark = pytest.mark.timeout(90)
INTERVAL = 0.2
SUCCESS, FAILURE = SpanExportResult.SUCCESS, SpanExportResult.FAILURE


@dataclass
class Live:
    """Two CAs, a server and a client certificate from each, and the files the gateway reads
    (starting with CA one's)."""

    one: TestCa
    two: TestCa
    server_one: Issued
    server_two: Issued
    client_one: Issued
    client_two: Issued
    cert_file: Path
    key_file: Path
    ca_file: Path

    def tls(self, mutual: bool = True) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "cert_file": str(self.cert_file),
            "key_file": str(self.key_file),
            "reload_interval": INTERVAL,
        }
        return {**settings, "client_ca_file": str(self.ca_file)} if mutual else settings

    def switch_to_two(self) -> None:
        replace_files(self.server_two, self.cert_file, self.key_file)
        replace_file(self.two.pem, self.ca_file)

    def context(self, client: Issued | None, **more: Any) -> ssl.SSLContext:
        return client_context([self.one.ca_file, self.two.ca_file], client, **more)


@pytest.fixture
def live(tmp_path: Path) -> Live:
    one, two = TestCa(tmp_path, "one"), TestCa(tmp_path, "two")
    server_one = one.server("server-one")
    served = tmp_path / "served"
    served.mkdir()
    cert_file, key_file, ca_file = served / "cert.pem", served / "key.pem", served / "ca.pem"
    shutil.copy(server_one.cert_file, cert_file)
    shutil.copy(server_one.key_file, key_file)
    shutil.copy(one.ca_file, ca_file)
    return Live(
        one, two, server_one, two.server("server-two"), one.client("one"), two.client("two"),
        cert_file, key_file, ca_file,
    )  # fmt: skip


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 8.0) -> None:
    """Wait until ``check()`` is true (bounded)."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def probe(port: int, context: ssl.SSLContext, session: Any = None) -> Handshake:
    return await asyncio.to_thread(https_probe, port, context, session)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Gateway]]]:
    started: list[Gateway] = []

    async def start(http_tls: dict[str, Any] | None, grpc_tls: dict[str, Any] | None) -> Gateway:
        protocols = {
            name: {"endpoint": "127.0.0.1:0", **({"tls": tls} if tls else {})}
            for name, tls in (("http", http_tls), ("grpc", grpc_tls))
        }
        data = {
            "receivers": {"otlp": {"protocols": protocols}},
            "exporters": {"file": {"path": str(tmp_path / "out" / "traces.jsonl")}},
            "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file"]}}},
            "admin": {"endpoint": "127.0.0.1:0"},
        }
        running = Gateway(parse_config(yaml.safe_dump(data), environ={}))
        started.append(running)
        await running.start()
        return running

    yield start
    for running in started:
        await running.stop(drain_timeout=1.0)


def grpc_port(gateway: Gateway) -> int:
    receiver = getattr(gateway.receivers["otlp"], "grpc", None)
    assert receiver is not None and receiver.port is not None
    return int(receiver.port)


async def test_http_reload_serves_the_new_certificate_and_client_ca(
    gateway: Callable[..., Awaitable[Gateway]], live: Live
) -> None:
    running = await gateway(live.tls(), None)
    port = running.http_servers[0].port
    first = await probe(port, live.context(live.client_one))
    assert first.ok and first.server_subject == live.server_one.subject
    assert not (await probe(port, live.context(live.client_two))).ok
    live.switch_to_two()

    async def serves_two() -> bool:
        seen = await probe(port, live.context(live.client_two))
        return seen.ok and seen.server_subject == live.server_two.subject

    await until(serves_two)
    assert not (await probe(port, live.context(live.client_one))).ok  # CA one is gone


async def test_grpc_reload_serves_the_new_certificate_and_client_ca(
    gateway: Callable[..., Awaitable[Gateway]], live: Live
) -> None:
    running = await gateway(None, live.tls())
    port, spans = grpc_port(running), finished_spans(1)

    def export(trusted: TestCa, client: Issued) -> Awaitable[SpanExportResult]:
        return asyncio.to_thread(grpc_export, port, spans, trusted.ca_file, client, timeout=1)

    assert await export(live.one, live.client_one) == SUCCESS
    live.switch_to_two()

    async def serves_two() -> bool:  # trusting only CA two proves the server certificate
        return await export(live.two, live.client_two) == SUCCESS

    await until(serves_two)
    assert await export(live.two, live.client_one) == FAILURE  # the client CA changed too
    assert await export(live.one, live.client_one) == FAILURE


async def test_a_broken_replacement_keeps_the_old_certificate_and_is_logged_once(
    gateway: Callable[..., Awaitable[Gateway]], live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="otelgate.tls")
    running = await gateway(live.tls(), live.tls())
    port, spans = running.http_servers[0].port, finished_spans(1)
    live.cert_file.write_text("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")

    async def both_logged() -> bool:
        return len([r for r in caplog.records if r.levelno == logging.ERROR]) >= 2

    await until(both_logged)
    await asyncio.sleep(5 * INTERVAL)  # more checks of the same broken file: no more errors
    errors = sorted(r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    assert len(errors) == 2, errors
    for name, error in zip(("grpc", "http"), errors, strict=True):
        assert error.startswith(f"listener otlp/{name}: tls.cert_file: {live.cert_file}: ")
        assert error.endswith("; still serving the previous certificate")
    seen = await probe(port, live.context(live.client_one))
    assert seen.ok and seen.server_subject == live.server_one.subject
    exported = await asyncio.to_thread(
        grpc_export, grpc_port(running), spans, live.one.ca_file, live.client_one
    )
    assert exported == SUCCESS
    # A key that does not match: the same, named by key_file.
    replace_file(live.server_two.cert_pem, live.cert_file)
    write_unrelated_key(live.key_file)

    async def mismatch_logged() -> bool:
        return any("does not match cert_file" in r.getMessage() for r in caplog.records)

    await until(mismatch_logged)
    assert (await probe(port, live.context(live.client_one))).server_subject == (
        live.server_one.subject
    )
    # Fixed files are picked up.
    replace_files(live.server_two, live.cert_file, live.key_file)

    async def serves_two() -> bool:
        return (await probe(port, live.context(live.client_one))).server_subject == (
            live.server_two.subject
        )

    await until(serves_two)
    assert any("reloaded the TLS files" in r.getMessage() for r in caplog.records)


async def test_a_tls12_session_from_before_a_reload_is_not_resumed(
    gateway: Callable[..., Awaitable[Gateway]], live: Live
) -> None:
    running = await gateway(live.tls(), None)
    port = running.http_servers[0].port
    context = live.context(live.client_one, max_version=ssl.TLSVersion.TLSv1_2)
    first = await probe(port, context)
    again = await probe(port, context, first.session)
    assert first.ok and again.ok and again.reused  # resumption works between reloads
    replace_files(live.one.server("server-one-b"), live.cert_file, live.key_file)

    async def reloaded() -> bool:
        return (await probe(port, context)).server_subject == "CN=server-one-b,O=otelgate tests"

    await until(reloaded)
    stale = await probe(port, context, first.session)
    assert not stale.ok  # refused once: the session skipped the current CAs' check
    fresh = await probe(port, context, first.session)
    assert fresh.ok and not fresh.reused  # the client's next try is a full handshake


def test_unchanged_files_do_not_reload(live: Live) -> None:
    tls = ServerTls("test", TlsSettings.model_validate(live.tls()))
    tls.load()
    context = tls.ssl_context()
    assert not tls.check()  # nothing changed
    os.utime(live.cert_file, None)  # touched, same contents
    assert not tls.check() and tls.generation == 1
    live.switch_to_two()
    assert tls.check() and tls.generation == 2
    assert tls.ssl_context() is context  # the server keeps its context; reloads go through it


def test_reload_on_uvloop(live: Live) -> None:
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> None:
        server = echo_server(TlsSettings.model_validate(live.tls()))
        await server.start()
        try:
            assert server.tls is not None
            seen = await probe(server.port, live.context(live.client_one))
            assert seen.ok and seen.server_subject == live.server_one.subject
            live.switch_to_two()
            assert server.tls.check()
            seen = await probe(server.port, live.context(live.client_two))
            assert seen.ok and seen.server_subject == live.server_two.subject
            assert not (await probe(server.port, live.context(live.client_one))).ok
        finally:
            await server.stop(timeout=1)

    uvloop.run(scenario())
