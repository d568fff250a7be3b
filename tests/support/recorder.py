"""A local HTTP server that records every request byte for byte and answers as told."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from tests.support.http_server import QuietHandler, serving


@dataclass(frozen=True)
class Recorded:
    """One request as received."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float = 0.0  # wall clock when it arrived


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class Recorder:
    """What the server received; ``answers`` are used in order, then ``default``."""

    def __init__(self) -> None:
        self.url = ""
        self.requests: list[Recorded] = []
        self.answers: deque[Answer] = deque()
        self.default = Answer()
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget what was received and answer 200 again."""
        with self._lock:
            self.requests.clear()
            self.answers.clear()
            self.default = Answer()

    def answer_with(self, status: int, body: bytes = b"", **headers: str) -> None:
        """Answer every request from now on with ``status``."""
        self.default = Answer(status, {k.replace("_", "-"): v for k, v in headers.items()}, body)

    def record(self, request: Recorded) -> Answer:
        with self._lock:
            self.requests.append(request)
            return self.answers.popleft() if self.answers else self.default


@contextlib.contextmanager
def recording_server() -> Iterator[Recorder]:
    """A recording HTTP server on 127.0.0.1, stopped when the block ends."""
    recorder = Recorder()

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            answer = recorder.record(Recorded(self.command, self.path, headers, body, time.time()))
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

    with serving(Handler) as server:
        recorder.url = f"http://127.0.0.1:{server.server_port}"
        yield recorder
