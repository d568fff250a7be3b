"""The Traces pages (``/ui/traces``, ``/ui/traces/{trace_id}``) over a real telemetry store:
search, the waterfall in tree order with its bars, span details, the trace's logs and error
groups, and the 400/404/503 pages."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.error_tracking.config import ErrorTrackingConfig
from gateway.error_tracking.service import ErrorTrackingService
from gateway.error_tracking.tracker import ErrorTracker
from gateway.otlp.batch import Batch, Signal
from gateway.store.telemetry_queries import TelemetryReader
from tests.gateway.dashboard.pages import (
    assert_csp_clean,
    body_cells,
    dashboard,
    gateway,
    log_batch,
    writer_at,
)
from tests.gateway.error_tracking.batches import PY_STACK, exception_attributes
from tests.gateway.store.telemetry_data import BASE_NS, MS, SpanSpec, attr, span_message, trace_hex

pytestmark = pytest.mark.timeout(30)
# Trace 1: a tree, given out of order; the checkout span failed with an exception.
TRACE = [
    SpanSpec(4, 1, "inventory", "reserve", 50, 60),
    SpanSpec(3, 2, "payments", "charge", 20, 30),
    SpanSpec(1, None, "frontend", "GET /cart", 0, 100),
    SpanSpec(2, 1, "checkout", "checkout <b>now</b>", 10, 90, error=True),
    SpanSpec(5, 9, "orphans", "parent not stored", 95, 100),
]
TREE = [  # (name, depth) in tree order: each span before its children, siblings by start
    ("GET /cart", 0),
    ("checkout <b>now</b>", 1),
    ("charge", 2),
    ("reserve", 1),
    ("parent not stored", 0),
]
STACK = PY_STACK.format(line=41, cart=42)


def trace_batch(trace: int, specs: list[SpanSpec]) -> Batch:
    """The spans of one trace; a span with ``error`` also carries an exception event."""
    request = ExportTraceServiceRequest()
    for spec in specs:
        group = request.resource_spans.add()
        group.resource.attributes.extend(
            [attr("service.name", spec.service), attr("telemetry.sdk.language", "python")]
        )
        span = span_message(trace, spec)
        if spec.error:
            event = span.events.add(name="exception", time_unix_nano=BASE_NS + 80 * MS)
            exception = exception_attributes("ValueError", "cart 42 is empty", STACK)
            event.attributes.extend(attr(k, v) for k, v in exception.items())
        group.scope_spans.add().spans.append(span)
    return Batch.from_request(Signal.TRACES, request)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = Path(tmp_path_factory.mktemp("traces"))
    writer = writer_at(tmp / "otelgate.db", clock=lambda: BASE_NS / 1e9)
    writer.write(trace_batch(1, TRACE))
    writer.write(trace_batch(2, [SpanSpec(7, None, "checkout", "slow", 200, 900)]))
    writer.write(log_batch("checkout", ["first <log>", "second log"], BASE_NS + 12 * MS, trace=1))
    writer.write(log_batch("checkout", ["unrelated"], BASE_NS + 13 * MS))
    writer.close()
    errors = ErrorTrackingService(ErrorTracker(ErrorTrackingConfig()), 5.0)
    errors.tracker.observe(trace_batch(1, TRACE))  # a group with a sample in trace 1
    reader = TelemetryReader(tmp / "otelgate.db")
    with TestClient(dashboard(gateway(tmp), lambda: reader, errors)) as client:
        yield client
    reader.close()


def span_rows(page: str) -> list[tuple[str, int]]:
    rows = re.findall(r'<tr id="span-[0-9a-f]{16}" data-depth="(\d+)">.*?<summary>(.*?)</summary>',
                      page, re.S)  # fmt: skip
    names = [re.search(r'<span class="span-name">(.*?)</span>', n) for _, n in rows]
    pairs = zip(names, rows, strict=True)
    shown = [(html.unescape(m[1] if m else ""), int(d)) for m, (d, _) in pairs]
    indents = [re.search(r'<span aria-hidden="true">(\u2003*)└ </span>', n) for _, n in rows]
    assert [len(i[1]) if i else 0 for i in indents] == [depth for _, depth in shown]
    return shown


def bars(page: str) -> list[tuple[float, float, bool]]:
    found = re.findall(r'<rect x="([\d.]+)" y="0" width="([\d.]+)" height="10"( class="error")?>',
                       page)  # fmt: skip
    return [(float(x), float(width), bool(error)) for x, width, error in found]


def test_the_trace_page_shows_every_span_in_tree_order(client: TestClient):
    answer = client.get(f"/ui/traces/{trace_hex(1)}")
    assert answer.status_code == 200
    page = answer.text
    assert span_rows(page) == TREE
    assert page.count("<h1>") == 1
    assert page.count('<svg class="bar" viewBox="0 0 1000 10" preserveAspectRatio="none"') == 5
    # x and width per mille of the trace (0-100 ms); the failed span's bar is marked.
    assert bars(page) == [
        (0, 1000, False), (100, 800, True), (200, 100, False), (500, 100, False), (950, 50, False),
    ]  # fmt: skip
    assert "<title>charge: +20 ms, 10 ms</title>" in page
    assert '<span class="badge error">error</span>' in page
    assert "checkout &lt;b&gt;now&lt;/b&gt;" in page and "<b>now</b>" not in page
    assert "(not stored)" in page  # the orphan's parent
    assert_csp_clean(page)


def test_span_details_events_and_resource(client: TestClient):
    page = client.get(f"/ui/traces/{trace_hex(1)}").text
    details = re.findall(r"<details>(.*?)</details>", page, re.S)
    assert len(details) == 5
    checkout = next(d for d in details if "checkout &lt;b&gt;" in d)
    assert '<dt>http.route</dt><dd class="mono">/checkout &lt;b&gt;now&lt;/b&gt;</dd>' in checkout
    assert '<div class="error">ValueError: cart 42 is empty</div>' in checkout
    stack = re.search(r'<pre class="stack">(.*?)</pre>', checkout, re.S)
    assert stack and html.unescape(stack[1]) == STACK
    assert '<dt>service.name</dt><dd class="mono">checkout</dd>' in checkout
    assert "<dt>Status message</dt><dd>boom</dd>" in checkout


def test_the_trace_logs_and_error_groups(client: TestClient):
    page = client.get(f"/ui/traces/{trace_hex(1)}").text
    assert body_cells(page) == ["first <log>", "second log"]  # oldest first, only this trace
    assert f'href="/ui/logs?trace_id={trace_hex(1)}"' in page
    groups = re.findall(r'<li><a href="/ui/errors/([0-9a-zA-Z_-]+)">(.*?)</a>', page)
    assert len(groups) == 1 and groups[0][1].startswith("ValueError: cart")
    assert '<span class="badge unresolved">unresolved</span>' in page
    other = client.get(f"/ui/traces/{trace_hex(2)}").text
    assert "No error group has an occurrence in this trace." in other
    assert "No log record of this trace is stored." in other


@pytest.mark.parametrize(
    ("trace_id", "status", "message"),
    [
        (trace_hex(99), 404, f"No span of trace {trace_hex(99)} is stored"),
        ("not-a-trace", 400, "a trace id is 32 hex digits"),
        ("0" * 32, 400, "all-zero trace id is invalid"),
        ('"><script>x', 400, "32 hex digits"),
    ],
)
def test_unknown_and_invalid_ids(client: TestClient, trace_id: str, status: int, message: str):
    answer = client.get(f"/ui/traces/{trace_id}")
    assert answer.status_code == status
    notice = re.search(r'<p class="notice" id="trace-error" role="alert">(.*?)</p>', answer.text)
    assert notice and message in html.unescape(notice[1])
    assert "<script>x" not in answer.text


def test_an_upper_case_id_is_the_same_trace(client: TestClient):
    assert span_rows(client.get(f"/ui/traces/{trace_hex(1).upper()}").text) == TREE


def linked_traces(page: str) -> list[str]:
    return re.findall(r'<tr data-trace="([0-9a-f]{32})">', page)


def test_recent_traces_search(client: TestClient):
    everything = client.get("/ui/traces")
    assert everything.status_code == 200
    assert linked_traces(everything.text) == [trace_hex(2), trace_hex(1)]  # newest first
    assert f'<a href="/ui/traces/{trace_hex(1)}">frontend: GET /cart</a>' in everything.text
    assert 'id="traces" data-live' in everything.text
    assert_csp_clean(everything.text)
    assert linked_traces(client.get("/ui/traces?service=payments").text) == [trace_hex(1)]
    assert linked_traces(client.get("/ui/traces?errors=1").text) == [trace_hex(1)]
    checked = client.get("/ui/traces?errors=1").text
    assert 'name="errors" type="checkbox" value="1" checked' in checked
    assert linked_traces(client.get("/ui/traces?min_duration=500ms").text) == [trace_hex(2)]
    assert linked_traces(client.get("/ui/traces?min_duration=&service=&since=").text) == [
        trace_hex(2), trace_hex(1),
    ]  # fmt: skip
    assert linked_traces(client.get("/ui/traces?since=1h").text) == []  # 2023 data


def test_open_a_trace_by_id(client: TestClient):
    spaced = {"trace_id": f" {trace_hex(1)} "}
    answer = client.get("/ui/traces", params=spaced, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/ui/traces/{trace_hex(1)}"
    odd = client.get("/ui/traces", params={"trace_id": "../../x?y"}, follow_redirects=False)
    assert odd.headers["location"] == "/ui/traces/..%2F..%2Fx%3Fy"


@pytest.mark.parametrize(
    ("params", "message"),
    [({"min_duration": "slow"}, "invalid duration"), ({"since": "soon"}, "is not a time")],
)
def test_bad_trace_searches(client: TestClient, params: dict[str, str], message: str):
    answer = client.get("/ui/traces", params=params)
    assert answer.status_code == 400
    notice = re.search(r'<p class="notice" id="traces-error" role="alert">(.*?)</p>', answer.text)
    assert notice and message in html.unescape(notice[1])


def test_without_a_store_the_pages_say_so(tmp_path: Path):
    with TestClient(dashboard(gateway(tmp_path), lambda: None)) as client:
        for url in ("/ui/traces", f"/ui/traces/{trace_hex(1)}"):
            answer = client.get(url)
            assert answer.status_code == 503
            assert "The telemetry store is not open" in answer.text
