"""Unhandled exceptions reach the gateway as OTLP log records carrying their span's trace id.

Three small pieces, all installed by the ``opentelemetry-instrument`` configurator:

- ``Span.record_exception`` of the SDK is wrapped so the first span recording an exception
  leaves its SpanContext on the exception object (``__otelgate_span_context__``); a span of
  another trace recording the same object (shared between requests) replaces it.
- :class:`EscapedExceptionFilter` sits on the loggers that report an exception after its
  span has ended (``uvicorn.error``'s "Exception in ASGI application", ``asyncio``'s
  unhandled task exceptions) and re-handles such a record inside that span context, so the
  OTLP handler and the JSON formatter both see its trace id.
- ``sys.excepthook`` and ``threading.excepthook`` are wrapped: the exception is logged at
  CRITICAL (logger ``otelgate.unhandled``) under its span context, the logger provider is
  flushed, then the previous hook runs (so stderr still shows the traceback).

``OTELGATE_UNHANDLED_EXCEPTIONS=off`` skips the filter and the hooks.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

from opentelemetry import _logs, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext

UNHANDLED_ENV = "OTELGATE_UNHANDLED_EXCEPTIONS"
SPAN_CONTEXT_ATTR = "__otelgate_span_context__"
UNHANDLED_LOGGER = "otelgate.unhandled"
UNHANDLED_MESSAGE = "unhandled exception"
#: Loggers that report exceptions escaping after their span has ended.
ESCAPED_EXCEPTION_LOGGERS = ("uvicorn.error", "asyncio")
FLUSH_TIMEOUT_MILLIS = 5000

_REHANDLED = "_otelgate_rehandled"  # marker on a record being re-handled (recursion guard)
_WRAPPED = "__otelgate_wrapped__"  # marker on our wrappers (idempotence)
_MAX_CHAIN = 32  # exceptions looked at through __cause__/__context__/groups

_internal = logging.getLogger(__name__)


def enabled(env: dict[str, str] | None = None) -> bool:
    """False when OTELGATE_UNHANDLED_EXCEPTIONS is off/false/0/no."""
    value = (os.environ if env is None else env).get(UNHANDLED_ENV, "").strip().lower()
    return value not in ("off", "false", "0", "no")


# --- the stash ---------------------------------------------------------------------------


def stash_span_context(exception: BaseException, ctx: SpanContext) -> None:
    """Leave ``ctx`` on ``exception``. Within one trace the first span to record it (the
    innermost) wins; a span of another trace replaces it: the same exception object raised
    again for another request (a failed cached task or future awaited by several)."""
    if not ctx.is_valid:
        return
    stashed = getattr(exception, SPAN_CONTEXT_ATTR, None)
    if isinstance(stashed, SpanContext) and stashed.trace_id == ctx.trace_id:
        return
    # Exceptions with __slots__ or a read-only __setattr__ refuse: they just carry no context.
    with contextlib.suppress(AttributeError, TypeError):
        setattr(exception, SPAN_CONTEXT_ATTR, ctx)


def _chain(exception: BaseException) -> Iterator[BaseException]:
    """``exception``, then its causes, contexts and group members (bounded, no cycles)."""
    seen: set[int] = set()
    todo = [exception]
    while todo and len(seen) < _MAX_CHAIN:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        members = getattr(current, "exceptions", None)  # BaseExceptionGroup
        if isinstance(members, tuple):
            todo.extend(m for m in members if isinstance(m, BaseException))
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                todo.append(linked)


def stashed_span_context(exception: BaseException | None) -> SpanContext | None:
    """The span context stashed on ``exception`` (or on what it wraps), if any."""
    if exception is None:
        return None
    for item in _chain(exception):
        ctx = getattr(item, SPAN_CONTEXT_ATTR, None)
        if isinstance(ctx, SpanContext) and ctx.is_valid:
            return ctx
    return None


def patch_record_exception() -> bool:
    """Wrap the SDK's ``Span.record_exception`` to stash the span context. Idempotent.

    Returns True when the wrapper is (now) in place.
    """
    from opentelemetry.sdk.trace import Span

    original = Span.record_exception
    if getattr(original, _WRAPPED, False):
        return True

    @functools.wraps(original)
    def record_exception(self: Span, exception: BaseException, *args: Any, **kwargs: Any) -> None:
        with contextlib.suppress(Exception):  # never break the caller's error path
            stash_span_context(exception, self.get_span_context())
        original(self, exception, *args, **kwargs)

    setattr(record_exception, _WRAPPED, True)
    Span.record_exception = record_exception  # type: ignore[method-assign]
    return True


# --- the filter --------------------------------------------------------------------------


def _no_current_span() -> bool:
    return not trace.get_current_span().get_span_context().is_valid


def _set_record_ids(record: logging.LogRecord, ctx: SpanContext) -> None:
    # The logging instrumentation stamps ids at record creation ("0" outside a span);
    # correct them for handlers that format later, e.g. on a queue thread.
    if hasattr(record, "otelTraceID"):
        record.otelTraceID = format(ctx.trace_id, "032x")
        record.otelSpanID = format(ctx.span_id, "016x")
        record.otelTraceSampled = ctx.trace_flags.sampled


class EscapedExceptionFilter(logging.Filter):
    """Re-handles a record whose exception escaped its (ended) span inside that span's context.

    Only for records with ``exc_info`` whose exception carries a stashed span context while no
    valid span is current; the original emission is suppressed, so each record leaves once.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _REHANDLED, False):
            return True
        exc_info = record.exc_info
        if not exc_info or not isinstance(exc_info, tuple) or exc_info[1] is None:
            return True
        ctx = stashed_span_context(exc_info[1])
        if ctx is None or not _no_current_span():
            return True
        setattr(record, _REHANDLED, True)
        _set_record_ids(record, ctx)
        with trace.use_span(NonRecordingSpan(ctx)):
            logging.getLogger(record.name).handle(record)
        return False


def install_filter(names: Iterable[str] = ESCAPED_EXCEPTION_LOGGERS) -> None:
    """Put one EscapedExceptionFilter on each named logger. Idempotent."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, EscapedExceptionFilter) for f in logger.filters):
            logger.addFilter(EscapedExceptionFilter())


# --- the hooks ---------------------------------------------------------------------------


def flush_logs(timeout_millis: int = FLUSH_TIMEOUT_MILLIS) -> None:
    """Force-flush the global LoggerProvider (when it can), bounded by ``timeout_millis``."""
    force_flush = getattr(_logs.get_logger_provider(), "force_flush", None)
    if callable(force_flush):
        with contextlib.suppress(Exception):
            force_flush(timeout_millis)


def log_unhandled(
    exc_type: type[BaseException],
    exc: BaseException | None,
    tb: TracebackType | None,
    *,
    flush_timeout_millis: int = FLUSH_TIMEOUT_MILLIS,
) -> None:
    """Log one unhandled exception at CRITICAL under its stashed span context, then flush."""
    ctx = stashed_span_context(exc)
    scope: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    if ctx is not None and _no_current_span():
        scope = trace.use_span(NonRecordingSpan(ctx))
    exc_info: Any = (exc_type, exc, tb)  # exc may be None from threading; logging copes
    try:
        with scope:
            logging.getLogger(UNHANDLED_LOGGER).critical(UNHANDLED_MESSAGE, exc_info=exc_info)
    except Exception:  # the hook must still reach the previous one
        return
    flush_logs(flush_timeout_millis)


def _worth_logging(exc_type: type[BaseException] | None) -> bool:
    # Ctrl-C and SystemExit are how processes and threads stop, not errors.
    return exc_type is not None and not issubclass(exc_type, KeyboardInterrupt | SystemExit)


def _make_sys_hook(
    previous: Callable[[type[BaseException], BaseException, TracebackType | None], Any],
) -> Callable[[type[BaseException], BaseException, TracebackType | None], Any]:
    def excepthook(
        exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> Any:
        if _worth_logging(exc_type):
            log_unhandled(exc_type, exc, tb)
        return previous(exc_type, exc, tb)

    setattr(excepthook, _WRAPPED, True)
    return excepthook


def _make_thread_hook(
    previous: Callable[[threading.ExceptHookArgs], Any],
) -> Callable[[threading.ExceptHookArgs], Any]:
    def excepthook(args: threading.ExceptHookArgs) -> Any:
        if _worth_logging(args.exc_type):
            log_unhandled(args.exc_type, args.exc_value, args.exc_traceback)
        return previous(args)

    setattr(excepthook, _WRAPPED, True)
    return excepthook


def install_excepthooks() -> None:
    """Wrap ``sys.excepthook`` and ``threading.excepthook``. Idempotent."""
    if not getattr(sys.excepthook, _WRAPPED, False):
        sys.excepthook = _make_sys_hook(sys.excepthook)
    if not getattr(threading.excepthook, _WRAPPED, False):
        threading.excepthook = _make_thread_hook(threading.excepthook)


def install() -> bool:
    """Everything above, when the SDK's tracer provider is the global one and not opted out.

    Returns True when installed.
    """
    from opentelemetry.sdk.trace import TracerProvider

    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        return False
    if not enabled():
        return False
    patch_record_exception()
    install_filter()
    install_excepthooks()
    return True
