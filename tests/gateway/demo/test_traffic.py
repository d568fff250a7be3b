"""The demo's traffic generator as the compose stack runs it: ``python -m gateway.demo.traffic``
against a frontend (here a plain HTTP server counting requests)."""

from __future__ import annotations

import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.support.ports import free_port


def traffic(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.demo.traffic", *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_drives_shop_requests_at_the_rate_and_reports_progress():
    seen: list[tuple[str, str]] = []

    class Frontend(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            seen.append((url.path, parse_qs(url.query).get("item", [""])[0]))
            status = 500 if len(seen) % 5 == 0 else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Frontend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        result = traffic("--url", url, "--rate", "20", "--duration", "2", "--report-every", "0.5")
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stderr
    shop = [item for path, item in seen if path == "/shop"]
    assert 25 <= len(shop) <= 50, len(shop)  # the readiness probe, then ~20/s for 2 s
    assert {"widget", "gadget", "gizmo", "doohickey"} <= set(shop)
    lines = [line for line in result.stdout.splitlines() if line.startswith("traffic: ")]
    assert len(lines) >= 3, result.stdout
    sent, failed = (int(word) for word in lines[-1].split() if word.isdigit())
    assert sent == len(shop) - 1 and failed == sum(1 for i in range(1, len(seen) + 1) if i % 5 == 0)


def test_a_frontend_that_never_answers_is_an_error():
    result = traffic("--url", f"http://127.0.0.1:{free_port()}", "--wait", "2")
    assert result.returncode == 1
    assert "did not answer within 2 s" in result.stderr


def test_rate_must_be_positive():
    result = traffic("--rate", "0")
    assert result.returncode == 2 and "--rate must be above 0" in result.stderr
