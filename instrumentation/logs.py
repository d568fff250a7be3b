"""Structured logs that carry the active trace context and the request's correlation id."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import traceback
from collections.abc import Iterator, Mapping, MutableMapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from opentelemetry import trace
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord

LOG_LEVEL_ENV = "LOG_LEVEL"
LOG_FORMAT_ENV = "LOG_FORMAT"
CORRELATION_ID_ATTRIBUTE = "correlation_id"
FORMATS = ("json", "text")

#: The current request's correlation id (the X-Request-ID); set by the middleware.
correlation_id_var: ContextVar[str | None] = ContextVar("otelgate_correlation_id", default=None)

# Attributes every LogRecord has, plus ones added by formatters and the OTel logging
# instrumentation; anything else on a record came from ``extra=``.
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "correlation_id",
    "otelSpanID",
    "otelTraceID",
    "otelTraceSampled",
    "otelServiceName",
    "color_message",  # uvicorn's ANSI-coloured duplicate of the message
}
_CORE = ("timestamp", "level", "service", "logger", "message", "trace_id", "span_id")
_MAX_DEPTH = 16


def get_correlation_id() -> str | None:
    """The correlation id of the request being handled, if any."""
    return correlation_id_var.get()


@contextlib.contextmanager
def correlation_id(value: str | None) -> Iterator[None]:
    """Set the correlation id for the duration of a ``with`` block."""
    token = correlation_id_var.set(value)
    try:
        yield
    finally:
        correlation_id_var.reset(token)


def current_trace_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) of the active span as 32/16 lower-hex, or None without one."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def resolve_service_name() -> str | None:
    """OTEL_SERVICE_NAME, else service.name of the SDK resource or OTEL_RESOURCE_ATTRIBUTES."""
    name = os.environ.get("OTEL_SERVICE_NAME", "").strip()
    if name:
        return name
    resource = getattr(trace.get_tracer_provider(), "resource", None)
    if resource is not None:
        value = resource.attributes.get("service.name")
        if value:
            return str(value)
    for item in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, _, value = item.partition("=")
        if key.strip() == "service.name" and value.strip():
            return value.strip()
    return None


def json_safe(value: Any, _depth: int = 0) -> Any:
    """``value`` made JSON-serialisable: containers recursed, unknown objects as ``str``."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if _depth >= _MAX_DEPTH:
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v, _depth + 1) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    try:
        return str(value)
    except Exception:  # a broken __str__ must not lose the log line
        return f"<unprintable {type(value).__name__}>"


def _timestamp(created: float) -> str:
    moment = datetime.fromtimestamp(created, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond // 1000:03d}Z"


def _record_trace_ids(record: logging.LogRecord) -> tuple[str, str] | None:
    # Prefer ids captured at record creation (LoggingInstrumentor injection), so a record
    # formatted later on another thread still carries the context it was emitted in.
    trace_id = getattr(record, "otelTraceID", None)
    span_id = getattr(record, "otelSpanID", None)
    if isinstance(trace_id, str) and isinstance(span_id, str) and trace_id.strip("0"):
        return trace_id, span_id
    return current_trace_ids()


def _record_correlation_id(record: logging.LogRecord) -> str | None:
    value = getattr(record, "correlation_id", None)
    return str(value) if value is not None else correlation_id_var.get()


class _ServiceNameMixin:
    _service_name: str | None

    def _service(self) -> str | None:
        if self._service_name is None:
            self._service_name = resolve_service_name()
        return self._service_name


class JsonFormatter(_ServiceNameMixin, logging.Formatter):
    """One JSON object per line: timestamp, level, service, logger, message, trace/span ids,
    correlation id, ``extra=`` fields and the exception when there is one."""

    def __init__(self, service_name: str | None = None) -> None:
        super().__init__()
        self._service_name = service_name

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(self.to_dict(record), ensure_ascii=False, separators=(",", ":"))

    def to_dict(self, record: logging.LogRecord) -> dict[str, Any]:
        """The fields of one log line, before serialisation."""
        out: dict[str, Any] = {
            "timestamp": _timestamp(record.created),
            "level": record.levelname,
            "service": self._service(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if out["service"] is None:
            del out["service"]
        ids = _record_trace_ids(record)
        if ids is not None:
            out["trace_id"], out["span_id"] = ids
        corr = _record_correlation_id(record)
        if corr is not None:
            out["correlation_id"] = corr
        for key, value in vars(record).items():
            if key in _RESERVED or key.startswith("_"):
                continue
            name = f"extra_{key}" if key in out or key in _CORE or key == "exception" else key
            out[name] = json_safe(value)
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, exc, tb = record.exc_info
            out["exception"] = {
                "type": exc_type.__name__,
                "message": str(exc) if exc is not None else "",
                "stacktrace": "".join(traceback.format_exception(exc_type, exc, tb)),
            }
        elif record.exc_text:
            out["exception"] = {  # a record relayed from another process keeps its text only
                "type": getattr(record, "_exc_type", ""),
                "message": getattr(record, "_exc_message", ""),
                "stacktrace": record.exc_text,
            }
        if record.stack_info:
            out["stack"] = record.stack_info
        return out


class TextFormatter(_ServiceNameMixin, logging.Formatter):
    """Human-readable lines that still carry trace_id/span_id/correlation_id."""

    def __init__(self, service_name: str | None = None) -> None:
        super().__init__()
        self._service_name = service_name

    def format(self, record: logging.LogRecord) -> str:
        ids = _record_trace_ids(record)
        trace_id, span_id = ids if ids is not None else ("-", "-")
        context = f"trace_id={trace_id} span_id={span_id}"
        corr = _record_correlation_id(record)
        if corr is not None:
            context += f" correlation_id={corr}"
        service = self._service() or "-"
        line = (
            f"{_timestamp(record.created)} {record.levelname:<8} {service} [{record.name}] "
            f"[{context}] {record.getMessage()}"
        )
        extras = {
            k: json_safe(v)
            for k, v in vars(record).items()
            if k not in _RESERVED and not k.startswith("_")
        }
        if extras:
            line += " " + json.dumps(extras, ensure_ascii=False, separators=(",", ":"))
        if record.exc_info and record.exc_info[0] is not None:
            line += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.stack_info:
            line += "\n" + record.stack_info
        return line


class _StdoutHandler(logging.StreamHandler[IO[str]]):
    """The stdout handler configure_logging owns (found again on the next call)."""


_HANDLER_MARK = "_otelgate_stdout"


class CorrelationIdLogProcessor(LogRecordProcessor):
    """Adds the ``correlation_id`` attribute to OTLP log records emitted inside a request.

    Register it before the exporting processor; it runs in the emitting thread, where the
    request's context variable is visible.
    """

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        corr = correlation_id_var.get()
        attributes = log_record.log_record.attributes
        if corr is None or attributes is None or CORRELATION_ID_ATTRIBUTE in attributes:
            return
        # Immutable attributes (a foreign SDK path) are left as they are.
        with contextlib.suppress(TypeError):
            attributes[CORRELATION_ID_ATTRIBUTE] = corr  # type: ignore[index]

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing buffered."""
        return True


def _parse_level(level: int | str | None) -> int:
    if isinstance(level, int):
        return level
    name = (level or os.environ.get(LOG_LEVEL_ENV) or "INFO").strip().upper()
    value = logging.getLevelName(name)
    return value if isinstance(value, int) else logging.INFO


def make_formatter(fmt: str | None = None, service_name: str | None = None) -> logging.Formatter:
    """JsonFormatter or TextFormatter, from ``fmt`` or LOG_FORMAT (default json)."""
    chosen = (fmt or os.environ.get(LOG_FORMAT_ENV) or "json").strip().lower()
    if chosen not in FORMATS:
        if fmt is not None:
            raise ValueError(f"log format must be one of {FORMATS}, got {fmt!r}")
        chosen = "json"
    if chosen == "text":
        return TextFormatter(service_name)
    return JsonFormatter(service_name)


def configure_logging(
    level: int | str | None = None,
    fmt: str | None = None,
    *,
    stream: IO[str] | None = None,
    service_name: str | None = None,
) -> logging.Handler:
    """Put the JSON (or text) formatter on the root logger's stdout handler. Idempotent.

    ``level`` defaults to LOG_LEVEL (INFO), ``fmt`` to LOG_FORMAT (json). A second call
    reconfigures the same handler instead of adding one. Returns the handler.
    """
    root = logging.getLogger()
    target = stream if stream is not None else sys.stdout
    handler: logging.Handler | None = None
    for existing in root.handlers:
        if getattr(existing, _HANDLER_MARK, False):
            handler = existing
            break
    if handler is None:
        for existing in root.handlers:
            if type(existing) is logging.StreamHandler and existing.stream is target:
                handler = existing  # the app's own stdout handler: reuse it, no duplicate lines
                break
    if handler is None:
        handler = _StdoutHandler(target)
        root.addHandler(handler)
    elif stream is not None and isinstance(handler, logging.StreamHandler):
        handler.setStream(stream)
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(make_formatter(fmt, service_name))
    root.setLevel(_parse_level(level))
    return handler


def use_root_logging_for_uvicorn(*, access_log: bool = False) -> None:
    """Route uvicorn's own loggers through the root logger (JSON on stdout, OTLP export).

    Call it after uvicorn configured logging (e.g. at app import). uvicorn's access log is
    switched off unless ``access_log``: the request middleware already logs every request.
    Under ``opentelemetry-instrument`` the routing itself is automatic
    (``instrumentation.uvicorn_logs``; the access log is kept unless the request middleware is
    built); call this to turn the access log off in any case.
    """
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = not access_log


def structlog_processor(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor adding trace_id, span_id, correlation_id and service."""
    ids = current_trace_ids()
    if ids is not None:
        event_dict.setdefault("trace_id", ids[0])
        event_dict.setdefault("span_id", ids[1])
    corr = correlation_id_var.get()
    if corr is not None:
        event_dict.setdefault("correlation_id", corr)
    service = resolve_service_name()
    if service is not None:
        event_dict.setdefault("service", service)
    return event_dict
