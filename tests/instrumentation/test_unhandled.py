"""Unhandled exceptions: span context stashed on record_exception, re-emitted by the filter
under that context, and logged by the excepthooks before the previous hook runs."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanContext, TraceFlags

from instrumentation import unhandled
from instrumentation.logs import JsonFormatter
from instrumentation.unhandled import (
    SPAN_CONTEXT_ATTR,
    UNHANDLED_ENV,
    UNHANDLED_LOGGER,
    UNHANDLED_MESSAGE,
    EscapedExceptionFilter,
    install,
    install_excepthooks,
    patch_record_exception,
    stash_span_context,
    stashed_span_context,
)
from tests.instrumentation.conftest import ListHandler, Telemetry


@pytest.fixture(autouse=True)
def _restore_sdk_span(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test patches record_exception afresh; the original comes back afterwards."""
    monkeypatch.setattr(SdkSpan, "record_exception", SdkSpan.record_exception)
    patch_record_exception()
    yield


def _raise_in_span(telemetry: Telemetry, name: str = "request") -> tuple[Exception, Any]:
    tracer = telemetry.tracer_provider.get_tracer("test")
    try:
        with tracer.start_as_current_span(name) as span:
            raise RuntimeError("escaped")
    except RuntimeError as exc:
        return exc, span.get_span_context()
    raise AssertionError("unreachable")


def test_record_exception_stashes_the_first_span_context(telemetry: Telemetry) -> None:
    tracer = telemetry.tracer_provider.get_tracer("test")
    try:
        with (
            tracer.start_as_current_span("outer") as outer,
            tracer.start_as_current_span("inner") as inner,
        ):
            raise ValueError("x")
    except ValueError as exc:
        stashed = getattr(exc, SPAN_CONTEXT_ATTR)
    assert stashed == inner.get_span_context()  # the innermost span recorded it first
    assert stashed.trace_id == outer.get_span_context().trace_id
    events = [e for s in telemetry.spans.get_finished_spans() for e in s.events]
    assert [e.name for e in events] == ["exception", "exception"]  # recording unchanged


def test_a_shared_exception_follows_the_latest_trace(telemetry: Telemetry) -> None:
    """One exception object awaited by two requests (a failed cached task): each request's
    record names its own trace, not the first request's."""
    tracer = telemetry.tracer_provider.get_tracer("test")
    shared = RuntimeError("the cached lookup failed")
    contexts = []
    for request in ("first", "second"):
        try:
            with (
                tracer.start_as_current_span(request),
                tracer.start_as_current_span(f"{request} handler") as handler,
            ):
                raise shared
        except RuntimeError as exc:
            assert exc is shared
            stashed = stashed_span_context(exc)
            assert stashed == handler.get_span_context()  # the innermost of this trace
            contexts.append(stashed)
    assert contexts[0] is not None and contexts[1] is not None
    assert contexts[0].trace_id != contexts[1].trace_id


def test_patch_is_idempotent() -> None:
    first = SdkSpan.record_exception
    patch_record_exception()
    assert SdkSpan.record_exception is first


def test_exceptions_refusing_attributes_are_ignored() -> None:
    class Slotted(Exception):
        __slots__ = ()

        def __setattr__(self, name: str, value: object) -> None:
            raise AttributeError(name)

    ctx = SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(1))
    exc = Slotted()
    stash_span_context(exc, ctx)  # no error
    assert stashed_span_context(exc) is None


def test_stashed_context_found_through_cause_and_groups() -> None:
    ctx = SpanContext(5, 6, is_remote=False, trace_flags=TraceFlags(1))
    inner = ValueError("inner")
    stash_span_context(inner, ctx)
    outer = RuntimeError("outer")
    outer.__cause__ = inner
    assert stashed_span_context(outer) == ctx
    assert stashed_span_context(ExceptionGroup("g", [KeyError("k"), inner])) == ctx
    assert stashed_span_context(KeyError("none")) is None


def _json_handler(logger: logging.Logger) -> io.StringIO:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter(service_name="unit"))
    logger.addHandler(handler)
    return out


class _CountingFilter(EscapedExceptionFilter):
    calls = 0

    def filter(self, record: logging.LogRecord) -> bool:
        type(self).calls += 1
        return super().filter(record)


def test_filter_re_emits_once_under_the_span_context(telemetry: Telemetry) -> None:
    exc, ctx = _raise_in_span(telemetry)
    stdout = _json_handler(telemetry.logger)
    counting = _CountingFilter()
    telemetry.logger.addFilter(counting)
    telemetry.logger.error("Exception in ASGI application", exc_info=exc)

    assert len(telemetry.records.records) == 1  # the original emission was suppressed
    assert _CountingFilter.calls == 2  # original (suppressed), re-handled (passed)
    [exported] = telemetry.logs.get_finished_logs()
    assert exported.log_record.trace_id == ctx.trace_id
    assert exported.log_record.span_id == ctx.span_id
    assert exported.log_record.attributes is not None
    assert exported.log_record.attributes["exception.type"] == "RuntimeError"
    [line] = [json.loads(x) for x in stdout.getvalue().splitlines()]
    assert line["trace_id"] == format(ctx.trace_id, "032x")
    assert line["span_id"] == format(ctx.span_id, "016x")
    assert line["exception"]["type"] == "RuntimeError"


def test_filter_corrects_ids_stamped_at_record_creation(telemetry: Telemetry) -> None:
    exc, ctx = _raise_in_span(telemetry)
    telemetry.logger.addFilter(EscapedExceptionFilter())
    telemetry.logger.error("late", exc_info=exc, extra={"otelTraceID": "0", "otelSpanID": "0"})
    [record] = telemetry.records.records
    assert getattr(record, "otelTraceID", None) == format(ctx.trace_id, "032x")
    assert getattr(record, "otelSpanID", None) == format(ctx.span_id, "016x")


def test_filter_leaves_other_records_alone(telemetry: Telemetry) -> None:
    exc, ctx = _raise_in_span(telemetry)
    telemetry.logger.addFilter(EscapedExceptionFilter())
    telemetry.logger.info("no exception")
    telemetry.logger.error("no stash", exc_info=ValueError("plain"))
    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("current") as current:
        telemetry.logger.error("inside a span", exc_info=exc)  # the current span wins
    assert len(telemetry.records.records) == 3
    trace_ids = [r.log_record.trace_id for r in telemetry.logs.get_finished_logs()]
    assert trace_ids == [0, 0, current.get_span_context().trace_id]
    assert ctx.trace_id not in trace_ids


def test_recursion_guard(telemetry: Telemetry) -> None:
    exc, _ = _raise_in_span(telemetry)

    class Relogging(logging.Handler):
        """A handler logging the record again on the same logger (would loop unguarded)."""

        depth = 0

        def emit(self, record: logging.LogRecord) -> None:
            if type(self).depth < 3:
                type(self).depth += 1
                telemetry.logger.handle(record)

    telemetry.logger.addFilter(EscapedExceptionFilter())
    telemetry.logger.addHandler(Relogging())
    telemetry.logger.error("boom", exc_info=exc)
    # one re-handle by the filter, then the marked record passes straight through
    assert len(telemetry.records.records) == 1 + Relogging.depth
    marked = telemetry.records.records[0]
    assert getattr(marked, "_otelgate_rehandled", False)
    before = len(telemetry.logs.get_finished_logs())
    assert EscapedExceptionFilter().filter(marked) is True  # outside any span: passes as is
    assert len(telemetry.logs.get_finished_logs()) == before  # and nothing re-emitted


@pytest.fixture
def unhandled_logger(telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch) -> ListHandler:
    """``otelgate.unhandled`` writing to the in-memory providers; flushes recorded."""
    logger = logging.getLogger(UNHANDLED_LOGGER)
    records = ListHandler()
    monkeypatch.setattr(logger, "propagate", False)
    monkeypatch.setattr(
        logger, "handlers", [records, LoggingHandler(logger_provider=telemetry.logger_provider)]
    )
    return records


class _Provider:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.calls.append(f"flush {timeout_millis}")
        return True


def test_sys_excepthook_logs_flushes_then_calls_previous(
    telemetry: Telemetry, unhandled_logger: ListHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    previous_args: list[Any] = []

    def previous(*args: Any) -> None:
        calls.append("previous")
        previous_args.append(args)

    monkeypatch.setattr(sys, "excepthook", previous)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    monkeypatch.setattr(unhandled._logs, "get_logger_provider", lambda: _Provider(calls))
    install_excepthooks()
    hook = sys.excepthook
    install_excepthooks()
    assert sys.excepthook is hook  # idempotent

    exc, ctx = _raise_in_span(telemetry)
    sys.excepthook(type(exc), exc, exc.__traceback__)

    assert calls == ["flush 5000", "previous"]
    assert previous_args == [(RuntimeError, exc, exc.__traceback__)]
    [record] = unhandled_logger.records
    assert record.levelno == logging.CRITICAL
    assert record.getMessage() == UNHANDLED_MESSAGE
    assert record.exc_info is not None and record.exc_info[1] is exc
    [exported] = telemetry.logs.get_finished_logs()
    assert exported.log_record.trace_id == ctx.trace_id
    assert exported.log_record.span_id == ctx.span_id
    assert exported.log_record.severity_text in ("CRITICAL", "FATAL")


def test_sys_excepthook_without_a_span_and_for_ctrl_c(
    telemetry: Telemetry, unhandled_logger: ListHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[type[BaseException]] = []
    monkeypatch.setattr(sys, "excepthook", lambda t, v, tb: seen.append(t))
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    monkeypatch.setattr(unhandled._logs, "get_logger_provider", lambda: _Provider([]))
    install_excepthooks()
    sys.excepthook(ValueError, ValueError("no span"), None)
    sys.excepthook(KeyboardInterrupt, KeyboardInterrupt(), None)
    assert seen == [ValueError, KeyboardInterrupt]  # previous hook always called
    assert len(unhandled_logger.records) == 1  # Ctrl-C is not logged
    [exported] = telemetry.logs.get_finished_logs()
    assert exported.log_record.trace_id == 0  # no span recorded it: no trace id


def test_threading_excepthook(
    telemetry: Telemetry, unhandled_logger: ListHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    previous_calls: list[Any] = []
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", previous_calls.append)
    monkeypatch.setattr(unhandled._logs, "get_logger_provider", lambda: _Provider([]))
    install_excepthooks()
    tracer = telemetry.tracer_provider.get_tracer("test")
    spans: list[Any] = []

    def work() -> None:
        with tracer.start_as_current_span("thread-job") as span:
            spans.append(span)
            raise OSError("disk gone")

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=10)
    assert len(previous_calls) == 1 and previous_calls[0].exc_type is OSError
    [record] = unhandled_logger.records
    assert record.levelno == logging.CRITICAL
    [exported] = telemetry.logs.get_finished_logs()
    assert exported.log_record.trace_id == spans[0].get_span_context().trace_id


def _saved_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    for name in unhandled.ESCAPED_EXCEPTION_LOGGERS:
        logger = logging.getLogger(name)
        monkeypatch.setattr(logger, "filters", list(logger.filters))


def test_install_needs_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    _saved_hooks(monkeypatch)
    before = sys.excepthook
    monkeypatch.setattr(unhandled.trace, "get_tracer_provider", lambda: object())
    assert install() is False
    assert sys.excepthook is before


def test_install_and_opt_out(telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch) -> None:
    _saved_hooks(monkeypatch)
    provider: TracerProvider = telemetry.tracer_provider
    monkeypatch.setattr(unhandled.trace, "get_tracer_provider", lambda: provider)
    before = sys.excepthook

    monkeypatch.setenv(UNHANDLED_ENV, "off")
    assert install() is False
    assert sys.excepthook is before
    assert not any(
        isinstance(f, EscapedExceptionFilter) for f in logging.getLogger("uvicorn.error").filters
    )

    monkeypatch.delenv(UNHANDLED_ENV)
    assert install() is True
    assert install() is True  # idempotent
    assert sys.excepthook is not before
    for name in ("uvicorn.error", "asyncio"):
        filters = logging.getLogger(name).filters
        assert sum(isinstance(f, EscapedExceptionFilter) for f in filters) == 1


def test_asyncio_unretrieved_task_exception(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    exc, ctx = _raise_in_span(telemetry)
    logger = logging.getLogger("asyncio")
    records = ListHandler()
    monkeypatch.setattr(logger, "propagate", False)
    monkeypatch.setattr(logger, "filters", [])
    monkeypatch.setattr(
        logger, "handlers", [records, LoggingHandler(logger_provider=telemetry.logger_provider)]
    )
    unhandled.install_filter(["asyncio"])
    loop = asyncio.new_event_loop()
    try:  # what asyncio does when a failed task is collected without its result read
        loop.call_exception_handler(
            {"message": "Task exception was never retrieved", "exception": exc}
        )
    finally:
        loop.close()
    assert len(records.records) == 1
    [exported] = telemetry.logs.get_finished_logs()
    assert exported.log_record.trace_id == ctx.trace_id
