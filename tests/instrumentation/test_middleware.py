"""RequestLoggingMiddleware with an in-process FastAPI app and in-memory exporters."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.trace import StatusCode

from instrumentation.logs import get_correlation_id
from instrumentation.masking import DEFAULT_MASKING
from instrumentation.middleware import REQUEST_ID_ATTRIBUTE, RequestLoggingMiddleware

from .conftest import Telemetry

SECRETS = (
    "hunter2",
    "4111111111111111",
    "4111 1111 1111 1111",
    "bob@example.com",
    "Bearer abc.def",
    "sid=s3ss10n",
    "k-123-secret",
    "srv-cookie-v",
    "tok-xyz",
)

Asgi = Callable[[Any, Any, Any], Awaitable[None]]


def build_app(telemetry: Telemetry, *, outer: str = "span", **options: Any) -> Asgi:
    """The app under test wrapped in the middleware, inside a server span.

    ``outer="span"``: a plain span started by a test tracer; ``outer="asgi"``: the
    OpenTelemetry ASGI middleware; ``outer="fastapi"``: the FastAPI instrumentation.
    """
    app = FastAPI()
    seen: dict[str, Any] = {}

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, Any]:
        seen["correlation_id"] = get_correlation_id()
        telemetry.logger.info("item read", extra={"item_id": item_id})
        return {"id": item_id}

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        body = await request.body()
        response = Response(body, media_type="application/json")
        response.set_cookie("srv", "srv-cookie-v")
        return response

    @app.get("/boom")
    async def boom() -> None:
        telemetry.logger.info("about to fail")
        raise RuntimeError("kaboom for bob@example.com")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"ok": "yes"}

    app.add_middleware(RequestLoggingMiddleware, logger=telemetry.logger, **options)
    app.state.seen = seen
    if outer == "asgi":
        return OpenTelemetryMiddleware(app, tracer_provider=telemetry.tracer_provider)
    if outer == "fastapi":
        FastAPIInstrumentor.instrument_app(app, tracer_provider=telemetry.tracer_provider)
        return app
    tracer = telemetry.tracer_provider.get_tracer("tests.server")

    async def with_span(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        with tracer.start_as_current_span(
            "server",
            kind=trace.SpanKind.SERVER,
            record_exception=False,
            set_status_on_exception=False,
        ):
            await app(scope, receive, send)

    with_span.seen = seen  # type: ignore[attr-defined]
    return with_span


def client(app: Asgi) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def access_records(telemetry: Telemetry) -> list[logging.LogRecord]:
    return [r for r in telemetry.records.records if hasattr(r, "duration_ms")]


def server_span(telemetry: Telemetry) -> Any:
    spans = [s for s in telemetry.spans.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
    assert len(spans) == 1, spans
    return spans[0]


async def test_request_id_generated_returned_and_on_span(telemetry: Telemetry) -> None:
    app = build_app(telemetry)
    async with client(app) as c:
        response = await c.get("/items/7")
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    assert len(request_id) == 32 and int(request_id, 16) >= 0
    [record] = access_records(telemetry)
    assert record.request_id == request_id  # type: ignore[attr-defined]
    assert app.seen["correlation_id"] == request_id  # type: ignore[attr-defined]
    assert server_span(telemetry).attributes[REQUEST_ID_ATTRIBUTE] == request_id
    assert get_correlation_id() is None  # reset after the request


async def test_request_id_propagated(telemetry: Telemetry) -> None:
    app = build_app(telemetry)
    async with client(app) as c:
        response = await c.get("/items/1", headers={"X-Request-ID": "req-abc.123"})
    assert response.headers["x-request-id"] == "req-abc.123"
    assert response.headers.get_list("x-request-id") == ["req-abc.123"]
    [record] = access_records(telemetry)
    assert record.request_id == "req-abc.123"  # type: ignore[attr-defined]
    otel = [r.log_record for r in telemetry.logs.get_finished_logs()]
    assert all(r.attributes and r.attributes["correlation_id"] == "req-abc.123" for r in otel)


@pytest.mark.parametrize(
    "bad",
    ["has space", "x" * 200, "line\\nbreak", "4111111111111111", "<script>"],
)
async def test_malformed_request_id_replaced(telemetry: Telemetry, bad: str) -> None:
    app = build_app(telemetry)
    async with client(app) as c:
        response = await c.get("/items/1", headers={"X-Request-ID": bad})
    assert response.headers["x-request-id"] != bad
    assert len(response.headers["x-request-id"]) == 32


async def test_access_record_fields(telemetry: Telemetry) -> None:
    app = build_app(telemetry)
    async with client(app) as c:
        await c.get("/items/42?page=2&token=tok-xyz", headers={"X-Request-ID": "r1"})
    [record] = access_records(telemetry)
    fields = vars(record)
    assert record.levelno == logging.INFO
    assert fields["method"] == "GET"
    assert fields["route"] == "/items/{item_id}"
    assert fields["path"] == "/items/42"
    assert fields["status"] == 200
    assert isinstance(fields["duration_ms"], float) and fields["duration_ms"] >= 0
    assert fields["request_size"] == 0
    assert fields["response_size"] == len(b'{"id":42}')
    assert fields["client"] == "127.0.0.1:123"
    assert fields["query"] == "page=2&token=***"
    assert fields["response_headers"]["x-request-id"] == "r1"
    assert "request_body" not in fields  # body logging is off by default
    # one OTel log record per request from the middleware, with the server span's trace id
    span = server_span(telemetry)
    otel = [r.log_record for r in telemetry.logs.get_finished_logs()]
    access = [r for r in otel if r.attributes and "duration_ms" in r.attributes]
    assert len(access) == 1
    assert access[0].trace_id == span.context.trace_id
    assert access[0].attributes is not None and access[0].attributes["route"] == fields["route"]
    handler_log = next(r for r in otel if r.body == "item read")
    assert handler_log.trace_id == span.context.trace_id


async def test_route_falls_back_to_path(telemetry: Telemetry) -> None:
    app = build_app(telemetry)
    async with client(app) as c:
        response = await c.get("/nowhere/bob@example.com")
    assert response.status_code == 404
    [record] = access_records(telemetry)
    assert record.route == "/nowhere/***"  # type: ignore[attr-defined]
    assert record.levelno == logging.WARNING


async def test_sensitive_data_never_logged_or_on_spans(telemetry: Telemetry) -> None:
    app = build_app(telemetry, log_bodies=True)
    body = {
        "item": "book",
        "password": "hunter2",
        "card": "4111 1111 1111 1111",
        "nested": [{"contact": "bob@example.com", "pan": 4111111111111111}],
    }
    headers = {
        "Authorization": "Bearer abc.def",
        "Cookie": "sid=s3ss10n",
        "X-API-Key": "k-123-secret",
    }
    async with client(app) as c:
        response = await c.post("/echo", json=body, headers=headers)
    assert response.status_code == 200
    [record] = access_records(telemetry)
    assert record.request_body == {  # type: ignore[attr-defined]
        "item": "book",
        "password": "***",
        "card": "***",
        "nested": [{"contact": "***", "pan": "***"}],
    }
    assert record.request_headers["authorization"] == "***"  # type: ignore[attr-defined]
    assert record.request_headers["cookie"] == "***"  # type: ignore[attr-defined]
    assert record.request_headers["x-api-key"] == "***"  # type: ignore[attr-defined]
    assert record.response_headers["set-cookie"] == "***"  # type: ignore[attr-defined]
    assert record.request_size == len(response.request.content)  # type: ignore[attr-defined]
    dumped = _dump_everything(telemetry)
    for secret in SECRETS:
        assert secret not in dumped, secret
    assert '"item": "book"' in dumped or "'item': 'book'" in dumped


async def test_body_logging_is_size_capped(telemetry: Telemetry) -> None:
    app = build_app(telemetry, log_bodies=True, max_body_bytes=40)
    payload = {"password": "hunter2", "filler": "x" * 500}
    async with client(app) as c:
        await c.post("/echo", json=payload)
    [record] = access_records(telemetry)
    assert record.request_body_truncated is True  # type: ignore[attr-defined]
    assert isinstance(record.request_body, str)  # type: ignore[attr-defined]
    assert len(record.request_body) <= 40  # type: ignore[attr-defined]
    assert "hunter2" not in record.request_body  # type: ignore[attr-defined]
    assert record.request_size > 500  # type: ignore[attr-defined]


async def test_body_logging_from_environment(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTELGATE_LOG_BODIES", "true")
    app = build_app(telemetry)
    async with client(app) as c:
        await c.post("/echo", json={"a": 1})
    [record] = access_records(telemetry)
    assert record.request_body == {"a": 1}  # type: ignore[attr-defined]


async def test_configurable_sensitive_header(telemetry: Telemetry) -> None:
    masking = DEFAULT_MASKING.extended(headers=["X-Tenant-Token-Raw"])
    app = build_app(telemetry, masking=masking)
    async with client(app) as c:
        await c.get("/health", headers={"X-Tenant-Token-Raw": "raw-v"})
    [record] = access_records(telemetry)
    assert record.request_headers["x-tenant-token-raw"] == "***"  # type: ignore[attr-defined]


async def test_excluded_paths_are_not_logged(telemetry: Telemetry) -> None:
    app = build_app(telemetry, exclude_paths=["/health"])
    async with client(app) as c:
        response = await c.get("/health")
    assert "x-request-id" in response.headers
    assert access_records(telemetry) == []


async def test_exception_recorded_logged_and_reraised(telemetry: Telemetry) -> None:
    app = build_app(telemetry)
    async with client(app) as c:
        response = await c.get("/boom", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    span = server_span(telemetry)
    assert span.status.status_code is StatusCode.ERROR
    events = [e for e in span.events if e.name == "exception"]
    assert len(events) == 1
    attrs = events[0].attributes
    assert attrs["exception.type"] == "RuntimeError"
    assert "Traceback" in attrs["exception.stacktrace"]
    assert "raise RuntimeError" in attrs["exception.stacktrace"]
    assert attrs["exception.message"] == "kaboom for ***"
    assert "bob@example.com" not in attrs["exception.stacktrace"]
    assert "bob@example.com" not in (span.status.description or "")
    [record] = access_records(telemetry)
    assert record.levelno == logging.ERROR
    assert record.status == 500  # type: ignore[attr-defined]
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    otel = [r.log_record for r in telemetry.logs.get_finished_logs()]
    errors = [r for r in otel if r.severity_text == "ERROR"]
    assert len(errors) == 1
    assert errors[0].trace_id == span.context.trace_id
    assert errors[0].attributes is not None
    assert "Traceback" in str(errors[0].attributes["exception.stacktrace"])
    assert errors[0].attributes["correlation_id"] == "boom-1"
    info = next(r for r in otel if r.body == "about to fail")
    assert info.trace_id == span.context.trace_id


@pytest.mark.parametrize("outer", ["asgi", "fastapi"])
async def test_exactly_one_exception_event_under_instrumentation(
    telemetry: Telemetry, outer: str
) -> None:
    # The ASGI instrumentation ends its span before the exception escapes (so we record);
    # the FastAPI one records it itself (so we don't): either way exactly one event.
    app = build_app(telemetry, outer=outer)
    async with client(app) as c:
        response = await c.get("/boom")
    assert response.status_code == 500
    span = server_span(telemetry)
    assert span.status.status_code is StatusCode.ERROR
    events = [e for e in span.events if e.name == "exception"]
    assert len(events) == 1
    assert "raise RuntimeError" in str(events[0].attributes["exception.stacktrace"])
    assert REQUEST_ID_ATTRIBUTE in span.attributes
    [record] = access_records(telemetry)
    assert record.levelno == logging.ERROR
    errors = [
        r.log_record
        for r in telemetry.logs.get_finished_logs()
        if r.log_record.severity_text == "ERROR"
    ]
    assert [e.trace_id for e in errors] == [span.context.trace_id]


async def test_record_exceptions_forced(telemetry: Telemetry) -> None:
    app = build_app(telemetry, outer="fastapi", record_exceptions=True)
    async with client(app) as c:
        await c.get("/boom")
    events = [e for e in server_span(telemetry).events if e.name == "exception"]
    assert len(events) == 2


async def test_non_http_scopes_pass_through(telemetry: Telemetry) -> None:
    calls: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["type"])

    middleware = RequestLoggingMiddleware(inner, logger=telemetry.logger)

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: Any) -> None:
        pass

    await middleware({"type": "lifespan"}, receive, send)
    assert calls == ["lifespan"]
    assert access_records(telemetry) == []


def _dump_everything(telemetry: Telemetry) -> str:
    """Every attribute of every finished span/event and every log record, as one string."""
    parts: list[str] = []
    for span in telemetry.spans.get_finished_spans():
        parts.append(repr(dict(span.attributes or {})))
        parts.append(span.status.description or "")
        parts.extend(repr(dict(e.attributes or {})) for e in span.events)
    for item in telemetry.logs.get_finished_logs():
        parts.append(repr(item.log_record.body))
        parts.append(repr(dict(item.log_record.attributes or {})))
    for record in telemetry.records.records:
        parts.append(record.getMessage())
        parts.append(repr(vars(record)))
    return "\n".join(parts)
