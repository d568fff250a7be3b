"""The shared HTTP POST of the HTTP exporters: transport failures come out classified,
redirects follow the documented policy, and no error shows a credential."""

from __future__ import annotations

import base64
import re
import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

import httpx
import pytest

from exporters.http_post import error_text, post
from gateway.errors import PermanentError, RetryableError
from tests.support.http_server import TrackingHTTPServer, serving
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


class _Redirecting(BaseHTTPRequestHandler):
    """Answers by path: redirects of each kind, and /final, which records what it got."""

    routes: ClassVar[dict[str, tuple[int, str]]] = {
        "/same307": (307, "/final"),
        "/same308": (308, "http://127.0.0.1:{port}/final"),
        "/found": (302, "/final"),
        "/see-other": (303, "/final"),
        "/twice": (307, "/same307"),
        "/cross-host": (307, "http://localhost:{port}/final?token=T0KEN"),
        "/cross-port": (307, "http://127.0.0.1:1/final"),
        "/to-https": (308, "https://127.0.0.1:{port}/final"),
    }

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append(  # type: ignore[attr-defined]
            (self.path, body, self.headers.get("Authorization"))
        )
        path = self.path.split("?")[0]
        status, location = self.routes.get(path, (200, ""))
        self.send_response(status)
        if location:
            assert isinstance(self.server, TrackingHTTPServer)
            self.send_header("Location", location.format(port=self.server.server_port))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def backend() -> Iterator[TrackingHTTPServer]:
    with serving(_Redirecting) as server:
        server.received = []  # type: ignore[attr-defined]
        yield server


def _url(server: TrackingHTTPServer, path: str, userinfo: str = "") -> str:
    return f"http://{userinfo}127.0.0.1:{server.server_port}{path}"


@pytest.mark.parametrize("path", ["/same307", "/same308"])
async def test_a_307_or_308_to_the_same_host_is_followed_once_with_the_same_body(
    backend: TrackingHTTPServer, path: str
) -> None:
    async with httpx.AsyncClient() as client:
        url = _url(backend, path, "alice:S3cret@")
        response = await post(client, url, "OTLP/HTTP", b"payload", {})
    assert response.status_code == 200
    basic = "Basic " + base64.b64encode(b"alice:S3cret").decode()
    assert backend.received == [  # type: ignore[attr-defined]
        (path, b"payload", basic),
        ("/final", b"payload", basic),
    ]


@pytest.mark.parametrize(
    ("path", "why"),
    [
        # A relative Location keeps the URL's credentials, masked like the rest.
        ("/found", "HTTP 302 redirect to http://alice:***@127.0.0.1:{port}/final; only a 307"),
        ("/see-other", "HTTP 303 redirect to http://alice:***@127.0.0.1:{port}/final; only a"),
        ("/twice", "HTTP 307 redirect to http://alice:***@127.0.0.1:{port}/final; a second"),
        (
            "/cross-host",
            "HTTP 307 redirect to http://localhost:{port}/final?token=***; "
            "redirects to another scheme, host or port are not followed",
        ),
        ("/cross-port", "HTTP 307 redirect to http://127.0.0.1:1/final; redirects to another"),
        ("/to-https", "HTTP 308 redirect to https://127.0.0.1:{port}/final; redirects to another"),
    ],
)
async def test_other_redirects_are_permanent_errors_naming_the_location(
    backend: TrackingHTTPServer, path: str, why: str
) -> None:
    async with httpx.AsyncClient() as client:
        with pytest.raises(PermanentError) as error:
            await post(client, _url(backend, path, "alice:S3cret@"), "Loki", b"x", {})
    message = str(error.value)
    assert message.startswith(f"Loki {_url(backend, path, 'alice:***@')}: ")
    assert why.format(port=backend.server_port) in message
    assert message.endswith("configure the final URL as the endpoint")
    assert "S3cret" not in message and "T0KEN" not in message
    paths = [p for p, _, _ in backend.received]  # type: ignore[attr-defined]
    assert "/final" not in paths  # nothing was sent where it was not configured to go


async def test_transport_errors_do_not_show_the_password() -> None:
    url = f"http://alice:S3cret@127.0.0.1:{free_port()}/v1/traces"
    async with httpx.AsyncClient() as client:
        with pytest.raises(RetryableError) as error:
            await post(client, url, "OTLP/HTTP", b"x", {})
    assert "http://alice:***@127.0.0.1" in str(error.value)
    assert "S3cret" not in str(error.value)
