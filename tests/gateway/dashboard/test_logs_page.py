"""The Logs page (``/ui/logs``) and its live tail (``/ui/logs/tail``) over a real telemetry
store written by the real writer: search, filters, pages, escaping, refusals, and the
Server-Sent Events stream (new records, resuming, ending)."""

from __future__ import annotations

import asyncio
import html
import json
import re
import time
from collections.abc import Callable, Iterator, MutableMapping
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from gateway.config.loading import parse_config
from gateway.dashboard import logs_page
from gateway.dashboard.config import DashboardConfig
from gateway.dashboard.logs_page import TailSettings
from gateway.dashboard.router import dashboard_router
from gateway.dashboard.sources import DashboardSources
from gateway.error_tracking.service import ErrorTrackingService
from gateway.otlp.batch import Batch, Signal
from gateway.security.sessions import Sessions
from gateway.service import Gateway
from gateway.store.telemetry_queries import TelemetryReader
from gateway.store.telemetry_writer import TelemetryWriter
from tests.gateway.store.telemetry_data import (
    BASE_NS,
    MS,
    attr,
    log_fact,
    logs_batch,
    order_number,
    trace_hex,
)

pytestmark = pytest.mark.timeout(30)
N = 240
HOSTILE = '<script>alert("x")</script>'
HOSTILE_SERVICE = '"><img src=x onerror=alert(1)>'
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


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = Path(tmp_path_factory.mktemp("logs"))
    writer = writer_at(tmp / "otelgate.db", clock=lambda: BASE_NS / 1e9)
    writer.write(logs_batch([log_fact(i, N) for i in range(N)]))
    writer.write(log_batch(HOSTILE_SERVICE, [HOSTILE], BASE_NS + 900 * MS, 17, note=HOSTILE))
    writer.close()
    reader = TelemetryReader(tmp / "otelgate.db")
    with TestClient(dashboard(gateway(tmp), lambda: reader)) as client:
        yield client
    reader.close()


def test_search_finds_a_known_line(client: TestClient):
    answer = client.get("/ui/logs", params={"q": '"payment declined" order-17*'})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    facts = [log_fact(i, N) for i in range(N)]
    wanted = [f.i for f in facts if f.body.startswith("payment declined") and
              re.search(r"order-17\d*$", f.body)]  # fmt: skip
    assert sorted(numbers(answer.text)) == sorted(wanted) and wanted
    page = answer.text
    assert page.count("<h1>") == 1
    assert '<label for="q">Search' in page and 'aria-describedby="q-hint"' in page
    assert "prefix* matches the start of a word" in page
    assert 'value="&#34;payment declined&#34; order-17*"' in page  # the query stays in the box
    assert '<script src="/ui/static/logs.js' in page
    assert_csp_clean(page)


def test_filters_and_newest_first(client: TestClient):
    facts = [log_fact(i, N) for i in range(N)]
    answer = client.get("/ui/logs", params={"service": "checkout", "severity": "error"})
    assert answer.status_code == 200
    found = numbers(answer.text)
    keep = [f for f in facts if f.service == "checkout" and f.severity >= 17]
    assert sorted(found) == sorted(f.i for f in keep)
    times = [(facts[i].time_ns, i) for i in found]
    assert times == sorted(times, reverse=True)
    assert '<option value="error" selected>' in answer.text
    assert 'badge error">ERROR<' in answer.text or 'badge fatal">FATAL<' in answer.text
    traced = client.get("/ui/logs", params={"trace_id": trace_hex(2).upper()})
    in_trace_2 = [f.i for f in facts if f.i // 10 + 1 == 2 and f.i % 10 < 3]
    assert sorted(numbers(traced.text)) == in_trace_2
    tid = trace_hex(2)
    assert f'<a href="/ui/traces/{tid}" aria-label="Trace {tid}">trace</a>' in traced.text
    since = "2023-11-14T22:13:20.050Z"  # BASE_NS + 50 ms
    later = client.get("/ui/logs", params={"since": since, "service": "payments"})
    expected = [f.i for f in facts if f.time_ns >= BASE_NS + 50 * MS and f.service == "payments"]
    assert sorted(numbers(later.text)) == sorted(expected)
    assert f'<option value="{since}" selected>Since {since}</option>' in later.text
    assert numbers(client.get("/ui/logs", params={"since": "15m"}).text) == []  # 2023 data


def test_cursor_pages_reach_every_record_once(client: TestClient):
    seen: list[int] = []
    url: str | None = "/ui/logs?severity=debug"
    pages = 0
    while url:
        page = client.get(url).text
        seen += numbers(page)
        pages += 1
        if pages > 1:
            assert '<a href="/ui/logs?severity=debug">Newest</a>' in page
        older = re.search(r'<a href="([^"]+)" rel="next">Older records</a>', page)
        url = html.unescape(older[1]) if older else None
    assert pages == 3  # 200 records at 100 a page, then the last page of 0 < n <= 100
    facts = [log_fact(i, N) for i in range(N)]
    assert sorted(seen) == [f.i for f in facts if f.severity >= 5]


def test_hostile_strings_are_escaped(client: TestClient):
    answer = client.get("/ui/logs", params={"q": "alert", "service": HOSTILE_SERVICE})
    page = answer.text
    assert body_cells(page) == [HOSTILE]
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "note=&lt;script&gt;" in page  # the attribute too
    reflected = client.get("/ui/logs", params={"q": '"><script>alert(2)</script>'}).text
    assert "<script>alert(2)" not in reflected
    assert_csp_clean(page)


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"q": '"unclosed'}, "unbalanced quote"),
        ({"q": "-only"}, "no word to search for"),
        ({"trace_id": "abc"}, "32 hex digits"),
        ({"severity": "loud"}, "unknown severity"),
        ({"since": "yesterday"}, "is not a time: use a duration"),
        ({"cursor": "%%%"}, "invalid cursor"),
        ({"q": "x" * 1001}, "longer than 1000 characters"),
    ],
)
def test_malformed_queries_are_a_400_page(client: TestClient, params: dict[str, str], reason: str):
    answer = client.get("/ui/logs", params=params)
    assert answer.status_code == 400
    notice = re.search(r'<p class="notice" id="logs-error" role="alert">(.*?)</p>', answer.text)
    assert notice and reason in html.unescape(notice[1])
    assert '<form class="filters"' in answer.text  # the user can fix it in place
    assert 'id="tail-toggle"' not in answer.text


def test_the_tail_button_carries_the_filters(client: TestClient):
    page = client.get("/ui/logs", params={"q": "cart", "service": "checkout", "since": ""}).text
    assert re.search(
        r'<button type="button" id="tail-toggle" aria-pressed="false" aria-controls="logs-body" '
        r'data-url="/ui/logs/tail\?q=cart&amp;service=checkout&amp;after=\d+">Live tail</button>',
        page,
    )  # the tail goes on from the newest record stored when the page was rendered
    assert 'id="tail-state" class="muted" role="status" aria-live="polite"' in page
    script = client.get("/ui/static/logs.js")
    assert script.status_code == 200
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "innerHTML" not in script.text and "EventSource" in script.text


def test_without_a_store_the_page_says_so(tmp_path: Path):
    with TestClient(dashboard(gateway(tmp_path), lambda: None)) as client:
        answer = client.get("/ui/logs", params={"q": "x"})
        assert answer.status_code == 503
        assert "The telemetry store is not open" in answer.text
        tail = client.get("/ui/logs/tail")
        assert tail.status_code == 503 and "not open" in tail.text


# --- the live tail ---------------------------------------------------------------------------


def tail_app(gw: Gateway, reader: ReaderSource, **settings: Any) -> FastAPI:
    router = APIRouter()
    fast = {"poll": 0.05, "keepalive": 0.25, "max_time": 1.0, "retry": 0.5, **settings}
    logs_page.add_routes(router, sources(gw, reader), TailSettings(**fast))
    app = FastAPI()
    app.include_router(router)
    return app


def events(stream: str) -> list[dict[str, str]]:
    """The stream's blocks: fields by name (comments under ``:``)."""
    found = []
    for block in stream.split("\n\n"):
        if not block:
            continue
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        found.append(fields)
    return found


def logs_of(stream: str) -> list[dict[str, Any]]:
    return [json.loads(e["data"]) for e in events(stream) if e.get("event") == "log"]


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[Gateway, TelemetryWriter, TelemetryReader]]:
    writer = writer_at(tmp_path / "otelgate.db")
    reader = TelemetryReader(tmp_path / "otelgate.db")
    yield gateway(tmp_path), writer, reader
    reader.close()
    writer.close()


async def test_a_record_written_after_the_stream_opens_arrives(live):
    gw, writer, reader = live
    now = time.time_ns()
    writer.write(log_batch("checkout", ["stored before"], now - 1000 * MS))
    app = tail_app(gw, lambda: reader)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:

        async def write_later() -> None:
            await asyncio.sleep(0.3)
            batch = log_batch("checkout", ["fresh one", HOSTILE], time.time_ns(), 17, trace=7,
                              **{"http.route": "/pay"})  # fmt: skip
            await asyncio.to_thread(writer.write, batch)
            await asyncio.to_thread(writer.write, log_batch("other", ["not mine"], time.time_ns()))

        later = asyncio.create_task(write_later())
        answer = await client.get("/ui/logs/tail", params={"service": "checkout"})
        await later
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert answer.headers["cache-control"] == "no-store"
    blocks = events(answer.text)
    assert blocks[0]["retry"] == "500" and blocks[0]["event"] == "ready"
    start = int(blocks[0]["id"])
    records = logs_of(answer.text)
    assert [r["body"] for r in records] == ["fresh one", HOSTILE]  # not the old one, not "other"
    first = records[0]
    assert set(first) >= {"time", "severity", "service", "body", "trace_id", "span_id"}
    shown = (first["service"], first["severity"], first["severity_class"])
    assert shown == ("checkout", "ERROR", "error")
    assert (first["trace_id"], first["span_id"]) == (trace_hex(7), (1).to_bytes(8, "big").hex())
    assert first["attributes"] == "http.route=/pay"
    assert abs(datetime.fromisoformat(first["time"]).timestamp() - time.time()) < 60
    ids = [int(e["id"]) for e in events(answer.text) if e.get("event") == "log"]
    assert ids == [r["id"] for r in records] and start < ids[0] < ids[1]
    assert {"": "keepalive"} in blocks  # quiet for longer than keepalive after the records


async def test_the_tail_follows_the_store_not_the_records_clocks(live):
    """A record stamped an hour ago (a client's clock, a replayed backlog) and a burst larger
    than one read still reach the tail, in the order they were stored."""
    gw, writer, reader = live
    app = tail_app(gw, lambda: reader)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:

        async def write_later() -> None:
            await asyncio.sleep(0.3)
            old = time.time_ns() - 3600 * 10**9
            await asyncio.to_thread(writer.write, log_batch("checkout", ["from the past"], old))
            burst = [f"burst {i}" for i in range(450)]
            await asyncio.to_thread(writer.write, log_batch("checkout", burst, time.time_ns()))

        later = asyncio.create_task(write_later())
        answer = await client.get("/ui/logs/tail")
        await later
    bodies = [r["body"] for r in logs_of(answer.text)]
    assert bodies == ["from the past", *(f"burst {i}" for i in range(450))]


async def test_last_event_id_resumes_after_that_record(live):
    gw, writer, reader = live
    now = time.time_ns()
    for body in ("one", "two", "three"):
        writer.write(log_batch("checkout", [body], now))
    app = tail_app(gw, lambda: reader, max_time=0.2)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
        fresh = await client.get("/ui/logs/tail")
        assert logs_of(fresh.text) == []  # a new tail starts at what is stored now
        start = int(events(fresh.text)[0]["id"])
        first = start - 2  # "one" (ids are the insertion order)
        resumed = await client.get("/ui/logs/tail", headers={"Last-Event-ID": str(first)})
        assert [r["body"] for r in logs_of(resumed.text)] == ["two", "three"]
        assert events(resumed.text)[0]["id"] == str(first)
        paused = await client.get("/ui/logs/tail", params={"after": str(first + 1)})
        assert [r["body"] for r in logs_of(paused.text)] == ["three"]
        junk = await client.get("/ui/logs/tail", headers={"Last-Event-ID": "nope"})
        assert logs_of(junk.text) == []


async def test_refusals_of_the_tail(live):
    gw, _, reader = live
    for app, params, status, reason in [
        (tail_app(gw, lambda: reader), {"q": '"open'}, 400, "unbalanced quote"),
        (tail_app(gw, lambda: reader), {"severity": "loud"}, 400, "unknown severity"),
        (tail_app(gw, lambda: reader, max_tails=0), {}, 503, "live tails are open already"),
    ]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
            answer = await client.get("/ui/logs/tail", params=params)
        assert answer.status_code == status and reason in answer.text


async def run_until_disconnect(
    app: FastAPI, spec_version: str, disconnect_after: float
) -> list[bytes]:
    """Call the app as a server would; the client goes away after ``disconnect_after``."""
    gone = asyncio.Event()
    asked = False
    sent: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message.get("body", b""))

    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": spec_version},
        "http_version": "1.1", "method": "GET", "scheme": "http", "path": "/ui/logs/tail",
        "raw_path": b"/ui/logs/tail", "root_path": "", "query_string": b"", "headers": [],
        "client": ("127.0.0.1", 5000), "server": ("admin", 80),
    }  # fmt: skip
    loop = asyncio.get_running_loop()
    loop.call_later(disconnect_after, gone.set)
    await asyncio.wait_for(app(scope, receive, send), timeout=5)
    return sent


@pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
async def test_a_client_that_goes_ends_the_stream(live, spec_version: str):
    gw, _, reader = live
    app = tail_app(gw, lambda: reader, max_time=60)
    started = time.monotonic()
    sent = await run_until_disconnect(app, spec_version, 0.3)
    assert time.monotonic() - started < 2
    assert b"event: ready" in b"".join(sent)


async def test_the_stream_ends_on_its_own(live):
    gw, _, reader = live
    app = tail_app(gw, lambda: reader, max_time=60)
    gw.state = "stopping"  # the gateway shuts down: streams end so it need not wait
    started = time.monotonic()
    await run_until_disconnect(app, "2.4", 30)
    assert time.monotonic() - started < 2
    gw.state = "running"
    store: dict[str, TelemetryReader | None] = {"reader": reader}
    app = tail_app(gw, lambda: store["reader"], max_time=60)
    asyncio.get_running_loop().call_later(0.2, store.update, {"reader": None})  # it closes
    sent = b"".join(await run_until_disconnect(app, "2.4", 30))
    assert b"event: closed\ndata: The telemetry store is not open" in sent
