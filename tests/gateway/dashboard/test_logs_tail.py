"""The Logs page's live tail (``/ui/logs/tail``): the Server-Sent Events stream over a real
store written by the real writer (new records, the store's order, resuming, refusals,
ending)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator, MutableMapping
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from gateway.dashboard import logs_page
from gateway.dashboard.logs_page import TailSettings
from gateway.service import Gateway
from gateway.store.telemetry_queries import TelemetryReader
from gateway.store.telemetry_writer import TelemetryWriter
from tests.gateway.dashboard.pages import ReaderSource, gateway, log_batch, sources, writer_at
from tests.gateway.store.telemetry_data import MS, trace_hex

pytestmark = pytest.mark.timeout(30)
HOSTILE = '<script>alert("x")</script>'


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
