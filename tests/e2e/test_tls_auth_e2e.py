"""TLS, mTLS and tokens together on the real gateway, with the SDK's gRPC and HTTP exporters:
a mapped client certificate is an identity of its own, an unmapped one needs a token, a
token works over TLS without a client certificate, and every accepted batch is named."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.e2e.conftest import forward_config
from tests.support.certs import TestCa
from tests.support.gateway_process import GatewayProcess
from tests.support.otlp_sink import OtlpSink
from tests.support.tls_clients import finished_spans, grpc_export, http_export

SUCCESS, FAILURE = SpanExportResult.SUCCESS, SpanExportResult.FAILURE
TOKEN = "checkout-token-tls-0123456789abcdef"


@pytest.fixture(autouse=True)
def _no_ca_bundle_override(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # requests lets these win over the SDK exporter's certificate_file (docs/tls.md).
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    yield


def names_received(sink: OtlpSink) -> list[str]:
    names = []
    for received in sink.received:
        for group in received.request.resource_spans:  # type: ignore[union-attr]
            attributes = {a.key: a.value.string_value for a in group.resource.attributes}
            names.append(attributes.get("otelgate.auth.name", "-"))
    return names


@pytest.mark.parametrize("mutual", [True, False], ids=["mtls", "tls"])
def test_certificates_and_tokens(
    start_gateway: Callable[..., GatewayProcess], sink: OtlpSink, tmp_path: Any, mutual: bool
):
    ca = TestCa(tmp_path, "ca")
    server = ca.server()
    payments = ca.client("payments", "Acme")  # mapped to an identity
    stranger = ca.client("stranger", "Acme")  # trusted by the CA, mapped to nothing
    tls = {"cert_file": str(server.cert_file), "key_file": str(server.key_file)}
    if mutual:
        tls["client_ca_file"] = str(ca.ca_file)
    config = forward_config(sink)
    config["auth"] = {
        "tokens": [{"name": "checkout", "token": TOKEN, "scopes": ["ingest"]}],
        "certificates": [{"name": "payments", "subject": "CN=payments, O=Acme",
                          "scopes": ["ingest"]}],
    }  # fmt: skip
    gateway = start_gateway(config, protocol_options={"grpc": {"tls": tls}, "http": {"tls": tls}})
    url = f"https://127.0.0.1:{gateway.http_port}/v1/traces"
    token = {"authorization": f"Bearer {TOKEN}"}

    def both(client: Any, headers: dict[str, str] | None) -> tuple[Any, Any]:
        spans = finished_spans(2)
        return (
            grpc_export(gateway.grpc_port, spans, ca.ca_file, client, headers=headers),
            http_export(url, spans, ca.ca_file, client, headers=headers),
        )

    expected: dict[str, tuple[Any, Any]] = {
        "no certificate, no token": (FAILURE, FAILURE),
        "no certificate, token": (SUCCESS, SUCCESS),
    }
    outcomes = {
        "no certificate, no token": both(None, None),
        "no certificate, token": both(None, token),
    }
    if mutual:  # without client_ca_file the server asks for no certificate
        expected.update({
            "mapped certificate": (SUCCESS, SUCCESS),
            "unmapped certificate": (FAILURE, FAILURE),
            "unmapped certificate, token": (SUCCESS, SUCCESS),
        })  # fmt: skip
        outcomes.update({
            "mapped certificate": both(payments, None),
            "unmapped certificate": both(stranger, None),
            "unmapped certificate, token": both(stranger, token),
        })  # fmt: skip
        # With mTLS a client without a certificate fails the handshake, token or not.
        expected["no certificate, token"] = (FAILURE, FAILURE)
    assert outcomes == expected
    accepted = 2 * sum(result == SUCCESS for pair in outcomes.values() for result in pair)
    assert sink.wait_for(lambda s: len(s.spans()) == accepted)
    names = sorted(names_received(sink))
    if mutual:
        assert names == ["checkout", "checkout", "payments", "payments"]
    else:
        assert names == ["checkout", "checkout"]
