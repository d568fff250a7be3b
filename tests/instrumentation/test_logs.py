"""JsonFormatter / TextFormatter / configure_logging."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from instrumentation.logs import (
    JsonFormatter,
    TextFormatter,
    configure_logging,
    correlation_id,
    json_safe,
    make_formatter,
    structlog_processor,
)

from .conftest import Telemetry

TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def _record(
    msg: str = "hello %s",
    args: tuple[Any, ...] = ("world",),
    level: int = logging.INFO,
    exc_info: Any = None,
    **extra: Any,
) -> logging.LogRecord:
    record = logging.getLogger("orders.api").makeRecord(
        "orders.api", level, __file__, 10, msg, args, exc_info, extra=extra or None
    )
    return record


def _fmt(record: logging.LogRecord, service: str | None = "orders") -> dict[str, Any]:
    out = json.loads(JsonFormatter(service_name=service).format(record))
    assert isinstance(out, dict)
    return out


def test_fields_without_active_span() -> None:
    out = _fmt(_record())
    assert TS.match(out["timestamp"]), out["timestamp"]
    assert out["level"] == "INFO"
    assert out["service"] == "orders"
    assert out["logger"] == "orders.api"
    assert out["message"] == "hello world"
    assert "trace_id" not in out
    assert "span_id" not in out
    assert "correlation_id" not in out
    assert "exception" not in out


def test_timestamp_is_utc_with_milliseconds() -> None:
    record = _record()
    record.created = 1_700_000_000.1239  # 2023-11-14T22:13:20.123Z
    assert _fmt(record)["timestamp"] == "2023-11-14T22:13:20.123Z"


def test_trace_ids_of_the_active_span(telemetry: Telemetry) -> None:
    tracer = telemetry.tracer_provider.get_tracer("t")
    with tracer.start_as_current_span("outer") as outer:
        with tracer.start_as_current_span("inner") as inner:
            inside = _fmt(_record())
        after_inner = _fmt(_record())
    ctx, outer_ctx = inner.get_span_context(), outer.get_span_context()
    assert inside["trace_id"] == format(ctx.trace_id, "032x")
    assert inside["span_id"] == format(ctx.span_id, "016x")
    assert re.fullmatch(r"[0-9a-f]{32}", inside["trace_id"])
    assert re.fullmatch(r"[0-9a-f]{16}", inside["span_id"])
    # the ACTIVE span at emit time, not the one active when the formatter was made
    assert after_inner["span_id"] == format(outer_ctx.span_id, "016x")
    assert "trace_id" not in _fmt(_record())


def test_correlation_id_from_contextvar() -> None:
    with correlation_id("req-1"):
        assert _fmt(_record())["correlation_id"] == "req-1"
    assert "correlation_id" not in _fmt(_record())


def test_exception_fields() -> None:
    try:
        raise ValueError("bad value")
    except ValueError:
        record = _record("failed", (), logging.ERROR, exc_info=sys.exc_info())
    out = _fmt(record)
    assert out["level"] == "ERROR"
    assert out["exception"]["type"] == "ValueError"
    assert out["exception"]["message"] == "bad value"
    assert "Traceback (most recent call last)" in out["exception"]["stacktrace"]
    assert "raise ValueError" in out["exception"]["stacktrace"]


class _Opaque:
    def __str__(self) -> str:
        return "opaque!"


def test_extra_fields_are_json_safe() -> None:
    out = _fmt(
        _record(
            order_id=7,
            tags={"a", "b"},
            obj=_Opaque(),
            nested={"when": _Opaque(), 3: [1.5, float("nan")]},
            raw=b"bytes",
        )
    )
    assert out["order_id"] == 7
    assert sorted(out["tags"]) == ["a", "b"]
    assert out["obj"] == "opaque!"
    assert out["nested"] == {"when": "opaque!", "3": [1.5, "nan"]}
    assert out["raw"] == "bytes"


def test_extra_fields_cannot_overwrite_core_fields() -> None:
    record = _record()
    record.level, record.service, record.trace_id = "fake", "evil", "0" * 32
    out = _fmt(record)
    assert out["level"] == "INFO"
    assert out["service"] == "orders"
    assert out["extra_level"] == "fake"
    assert out["extra_service"] == "evil"
    assert out["extra_trace_id"] == "0" * 32
    assert "trace_id" not in out


def test_service_name_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    assert _fmt(_record(), service=None)["service"] == "from-env"
    monkeypatch.delenv("OTEL_SERVICE_NAME")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=dev,service.name=res")
    assert _fmt(_record(), service=None)["service"] == "res"


def test_json_safe_broken_str() -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert json_safe(Broken()) == "<unprintable Broken>"


def test_text_format_has_trace_ids(telemetry: Telemetry) -> None:
    tracer = telemetry.tracer_provider.get_tracer("t")
    formatter = TextFormatter(service_name="orders")
    with tracer.start_as_current_span("s") as span, correlation_id("c-9"):
        line = formatter.format(_record(order_id=3))
    ctx = span.get_span_context()
    assert f"trace_id={ctx.trace_id:032x}" in line
    assert f"span_id={ctx.span_id:016x}" in line
    assert "correlation_id=c-9" in line
    assert "hello world" in line
    assert '"order_id":3' in line
    assert "trace_id=- span_id=-" in formatter.format(_record())


def test_text_format_exception() -> None:
    try:
        raise KeyError("k")
    except KeyError:
        record = _record("oops", (), logging.ERROR, exc_info=sys.exc_info())
    line = TextFormatter(service_name="x").format(record)
    assert line.splitlines()[0].endswith("oops")
    assert "KeyError" in line


def test_make_formatter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    assert isinstance(make_formatter(), JsonFormatter)
    monkeypatch.setenv("LOG_FORMAT", "text")
    assert isinstance(make_formatter(), TextFormatter)
    monkeypatch.setenv("LOG_FORMAT", "bogus")
    assert isinstance(make_formatter(), JsonFormatter)
    with pytest.raises(ValueError):
        make_formatter("xml")


@pytest.fixture
def clean_root() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    root.handlers = [h for h in handlers if not getattr(h, "_otelgate_stdout", False)]
    yield root
    root.handlers = handlers
    root.setLevel(level)


def test_configure_logging_is_idempotent(
    clean_root: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    stream = io.StringIO()
    before = len(clean_root.handlers)
    first = configure_logging(stream=stream, service_name="svc")
    second = configure_logging(stream=stream, service_name="svc")
    assert first is second
    assert len(clean_root.handlers) == before + 1
    assert clean_root.level == logging.DEBUG
    assert isinstance(first.formatter, JsonFormatter)
    logging.getLogger("some.module").debug("dbg %d", 1, extra={"k": "v"})
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["message"] == "dbg 1"
    assert line["k"] == "v"
    assert line["service"] == "svc"
    third = configure_logging("WARNING", "text", stream=stream)
    assert third is first
    assert isinstance(first.formatter, TextFormatter)
    assert clean_root.level == logging.WARNING


def test_configure_logging_reuses_an_existing_stdout_handler(clean_root: logging.Logger) -> None:
    stream = io.StringIO()
    mine = logging.StreamHandler(stream)
    clean_root.addHandler(mine)
    handler = configure_logging(stream=stream)
    assert handler is mine
    assert isinstance(mine.formatter, JsonFormatter)


def test_structlog_processor(telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "sl")
    tracer = telemetry.tracer_provider.get_tracer("t")
    with tracer.start_as_current_span("s") as span, correlation_id("c1"):
        event = structlog_processor(None, "info", {"event": "x"})
    assert event["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert event["correlation_id"] == "c1"
    assert event["service"] == "sl"
    assert "trace_id" not in structlog_processor(None, "info", {"event": "y"})


def test_correlation_id_processor_adds_otel_attribute(telemetry: Telemetry) -> None:
    with correlation_id("abc"):
        telemetry.logger.info("inside")
    telemetry.logger.info("outside")
    inside, outside = (r.log_record for r in telemetry.logs.get_finished_logs())
    assert inside.attributes is not None and inside.attributes["correlation_id"] == "abc"
    assert outside.attributes is not None and "correlation_id" not in outside.attributes
