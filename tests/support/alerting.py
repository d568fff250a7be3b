"""What the alerting end-to-end tests share: SDK senders whose error rate and error logs the
test controls, a mailbox (aiosmtpd) and small readers of webhook payloads."""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.support.ports import free_port
from tests.support.recorder import Recorded, Recorder


class SpanSender:
    """A service sending SERVER spans through the SDK's OTLP/HTTP exporter."""

    def __init__(self, endpoint: str, service: str) -> None:
        self.provider = TracerProvider(resource=Resource.create({"service.name": service}))
        exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")
        self.provider.add_span_processor(SimpleSpanProcessor(exporter))
        self.tracer = self.provider.get_tracer("e2e.alerting")

    def send(self, n: int, errors: int = 0) -> None:
        """``n`` spans of 5 ms, the first ``errors`` of them failed."""
        for i in range(n):
            start = time.time_ns()
            span = self.tracer.start_span("GET /pay", kind=SpanKind.SERVER, start_time=start)
            if i < errors:
                span.set_status(Status(StatusCode.ERROR, "boom"))
            span.end(end_time=start + 5_000_000)

    def close(self) -> None:
        self.provider.shutdown()


class LogSender:
    """A service writing logs with the stdlib, shipped by the SDK's OTLP/HTTP log exporter."""

    def __init__(self, endpoint: str, service: str) -> None:
        self.provider = LoggerProvider(resource=Resource.create({"service.name": service}))
        exporter = OTLPLogExporter(endpoint=f"{endpoint}/v1/logs")
        self.provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        self.logger = logging.getLogger(f"e2e.alerting.{service}")
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        self.handler = LoggingHandler(logger_provider=self.provider)
        self.logger.addHandler(self.handler)

    def error(self, text: str = "payment declined") -> None:
        self.logger.error(text)

    def close(self) -> None:
        self.logger.removeHandler(self.handler)
        self.provider.shutdown()


@contextlib.contextmanager
def every(seconds: float, action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` every ``seconds`` in a thread while the block runs."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            action()
            stop.wait(seconds)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


@dataclass
class Mailbox:
    """An aiosmtpd handler keeping every message it accepts."""

    messages: list[tuple[float, EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((time.time(), parsed))
        return "250 OK"

    def subjects(self) -> list[str]:
        return [str(message["Subject"]) for _, message in self.messages]


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    """An SMTP server on 127.0.0.1 (no TLS); yields its mailbox and port."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def payloads(recorder: Recorder, path: str | None = None) -> list[tuple[Recorded, dict[str, Any]]]:
    """Webhook requests answered 2xx would be ideal; this returns every request with its JSON."""
    return [
        (r, json.loads(r.body)) for r in list(recorder.requests) if path is None or r.path == path
    ]


def wait_for(check: Callable[[], Any], timeout: float, every_s: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {check}")
        time.sleep(every_s)
