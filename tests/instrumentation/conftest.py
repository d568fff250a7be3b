"""Local (non-global) OpenTelemetry providers with in-memory exporters for unit tests."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from instrumentation.logs import CorrelationIdLogProcessor


class ListHandler(logging.Handler):
    """Keeps the stdlib records it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Telemetry:
    tracer_provider: TracerProvider
    spans: InMemorySpanExporter
    logger_provider: LoggerProvider
    logs: InMemoryLogRecordExporter
    logger: logging.Logger
    records: ListHandler


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    """A tracer provider and a logger bridged to OTel logs, both in memory, plus a fresh
    stdlib logger (not propagating) whose records are kept as well."""
    resource = Resource.create({"service.name": "unit"})
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logs = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(CorrelationIdLogProcessor())
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    logger = logging.getLogger(f"test.instrumentation.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    records = ListHandler()
    logger.addHandler(records)
    logger.addHandler(LoggingHandler(logger_provider=logger_provider))
    yield Telemetry(tracer_provider, spans, logger_provider, logs, logger, records)
    logger.handlers.clear()
    tracer_provider.shutdown()
    logger_provider.shutdown()
