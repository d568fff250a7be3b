"""404 and 405 on the OTLP/HTTP port answer a ``google.rpc.Status`` in the request's encoding,
like every other 4xx/5xx there (issue 10, finding 8)."""

from __future__ import annotations

from unittest.mock import MagicMock

import httpx
import orjson
import pytest
from google.rpc.status_pb2 import Status

from gateway.receivers.otlp_http import OtlpHttpReceiver

UNIMPLEMENTED = 12
PROTOBUF = "application/x-protobuf"
JSON = "application/json"


@pytest.fixture
async def client():
    app = OtlpHttpReceiver(MagicMock(), 1000, 1000).app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://otlp") as running:
        yield running


@pytest.mark.parametrize(
    ("method", "path", "status", "words"),
    [
        ("POST", "/v1/nope", 404, "no such path /v1/nope"),
        ("POST", "/", 404, "no such path /"),
        ("GET", "/openapi.json", 404, "no such path"),
        ("GET", "/v1/traces", 405, "method GET not allowed on /v1/traces"),
        ("PUT", "/v1/logs", 405, "method PUT not allowed"),
    ],
)
async def test_protobuf_requests_get_a_protobuf_status(client, method, path, status, words):
    response = await client.request(method, path, content=b"", headers={"content-type": PROTOBUF})
    assert response.status_code == status
    assert response.headers["content-type"] == PROTOBUF
    body = Status.FromString(response.content)
    assert body.code == UNIMPLEMENTED
    assert words in body.message
    if status == 405:
        assert response.headers["allow"] == "POST"


@pytest.mark.parametrize("content_type", [JSON, None, "text/plain"])
async def test_json_and_unknown_requests_get_a_json_status(client, content_type):
    headers = {"content-type": content_type} if content_type else {}
    for method, path, status in (("POST", "/v1/nope", 404), ("GET", "/v1/metrics", 405)):
        response = await client.request(method, path, headers=headers)
        assert response.status_code == status
        assert response.headers["content-type"] == JSON
        body = orjson.loads(response.content)
        assert body["code"] == UNIMPLEMENTED
        assert "detail" not in body and body["message"]
