"""The shared HTTP POST of the HTTP exporters: transport failures come out classified."""

from __future__ import annotations

import re
import socket

import httpx
import pytest

from exporters.http_post import error_text, post
from gateway.errors import PermanentError, RetryableError
from tests.support.ports import free_port


async def test_a_scheme_httpx_cannot_use_is_permanent() -> None:
    async with httpx.AsyncClient() as client:
        with pytest.raises(PermanentError, match=re.escape("Loki ftp://127.0.0.1:1/push")):
            await post(client, "ftp://127.0.0.1:1/push", "Loki", b"x", {})


async def test_a_refused_connection_is_retryable_and_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1/traces"
    async with httpx.AsyncClient() as client:
        with pytest.raises(RetryableError, match=re.escape(f"OTLP/HTTP {url}: ConnectError")):
            await post(client, url, "OTLP/HTTP", b"x", {})


async def test_a_backend_that_never_answers_times_out_retryably() -> None:
    with socket.socket() as listener:  # accepts connections (backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/api/v1/write"
        async with httpx.AsyncClient(timeout=0.3) as client:
            with pytest.raises(RetryableError, match=r"remote write .*: timed out after 0\.3s"):
                await post(client, url, "remote write", b"x", {})


def test_error_text_quotes_the_start_of_the_body_else_the_reason() -> None:
    long = httpx.Response(400, content=b"x" * 2000)
    assert error_text(long) == "x" * 512
    assert error_text(httpx.Response(503, content=b"  ")) == "Service Unavailable"


async def test_transport_errors_do_not_show_the_password() -> None:
    url = f"http://alice:S3cret@127.0.0.1:{free_port()}/v1/traces"
    async with httpx.AsyncClient() as client:
        with pytest.raises(RetryableError) as error:
            await post(client, url, "OTLP/HTTP", b"x", {})
    assert "http://alice:***@127.0.0.1" in str(error.value)
    assert "S3cret" not in str(error.value)
