"""What the dashboard's page tests share: a built (not started) gateway, the dashboard over
a store reader, the store's writer and log requests, and readers of rendered HTML."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import yaml
from fastapi import FastAPI
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from gateway.config.loading import parse_config
from gateway.dashboard.config import DashboardConfig
from gateway.dashboard.router import dashboard_router
from gateway.dashboard.sources import DashboardSources
from gateway.error_tracking.service import ErrorTrackingService
from gateway.otlp.batch import Batch, Signal
from gateway.security.sessions import Sessions
from gateway.service import Gateway
from gateway.store.telemetry_queries import TelemetryReader
from gateway.store.telemetry_writer import TelemetryWriter
from tests.gateway.store.telemetry_data import MS, attr, order_number

READER = "reader-token-0123456789abcdef"
OPERATOR = "operator-token-0123456789abcdef"
ReaderSource = Callable[[], TelemetryReader | None]


def gateway(tmp_path: Path) -> Gateway:
    """A gateway that is built, not started: its health and SLO components are real."""
    config = {
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": "127.0.0.1:0"}}}},
        "exporters": {"file": {"path": str(tmp_path / "out.jsonl")}},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file"]}}},
        "admin": {"endpoint": "127.0.0.1:0"},
        "store": {"enabled": False},
    }
    return Gateway(parse_config(yaml.safe_dump(config), environ={}))


def sources(
    gw: Gateway, reader: ReaderSource, errors: ErrorTrackingService | None = None
) -> DashboardSources:
    return DashboardSources(
        DashboardConfig(), gw.health_api, gw.slo_tracker, None, errors, reader, None, Sessions()
    )


def dashboard(gw: Gateway, reader: ReaderSource, errors: ErrorTrackingService | None = None):
    app = FastAPI()
    app.include_router(dashboard_router(sources(gw, reader, errors)))
    return app


def writer_at(path: Path, clock: Callable[[], float] = time.time) -> TelemetryWriter:
    return TelemetryWriter(
        path, retention=86400, max_size_bytes=16 << 20, search_attributes=["http.route"],
        clock=clock,
    )  # fmt: skip


def log_batch(
    service: str, bodies: list[str], time_ns: int, severity: int = 9, trace: int | None = None,
    **attributes: str,
) -> Batch:  # fmt: skip
    """One request with a record per body, ``MS`` apart from ``time_ns``."""
    request = ExportLogsServiceRequest()
    group = request.resource_logs.add()
    group.resource.attributes.append(attr("service.name", service))
    scope = group.scope_logs.add()
    for i, body in enumerate(bodies):
        record = LogRecord(time_unix_nano=time_ns + i * MS, severity_number=severity)  # type: ignore[arg-type]
        record.body.string_value = body
        record.attributes.extend(attr(k, v) for k, v in attributes.items())
        if trace is not None:
            record.trace_id = trace.to_bytes(16, "big")
            record.span_id = (i + 1).to_bytes(8, "big")
        scope.log_records.append(record)
    return Batch.from_request(Signal.LOGS, request)


def body_cells(page: str) -> list[str]:
    return [html.unescape(b) for b in re.findall(r'<td class="body">(.*?)</td>', page, re.S)]


def numbers(page: str) -> list[int]:
    return [order_number(b) for b in body_cells(page) if "order-" in b]


def assert_csp_clean(page: str) -> None:
    """Nothing the page's Content-Security-Policy would block."""
    tags = re.findall(r"<[a-zA-Z][^>]*>", page)
    assert all(not re.match(r"<script(?![^>]*\bsrc=)", tag) for tag in tags)
    unquoted = [re.sub(r'"[^"]*"', '""', tag) for tag in tags]  # text in values is text
    assert all(not re.search(r"\s(style|on[a-z]+)=", tag) for tag in unquoted)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {k: v or "" for k, v in attrs}))


def tags(text: str, element: str, **wanted: str) -> list[dict[str, str]]:
    """The attributes of every ``element`` having the ``wanted`` ones (``data_post`` is
    ``data-post``), values unescaped as a browser reads them."""
    parser = _Tags()
    parser.feed(text)
    return [
        attrs
        for tag, attrs in parser.found
        if tag == element and all(attrs.get(k.replace("_", "-")) == v for k, v in wanted.items())
    ]


def rows_of(first: int, last: int, total: int) -> str:
    """What a table's pager says it shows."""
    return f"{first}\N{EN DASH}{last} of {total}"


def row(text: str, row_id: str) -> str:
    found = re.search(rf'<tr id="{re.escape(row_id)}".*?</tr>', text, re.S)
    assert found is not None, f"no row {row_id}"
    return found[0]
