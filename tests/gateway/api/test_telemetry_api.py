"""``/logs``, ``/traces`` and ``/traces/{id}`` over a real telemetry store: answers, pages,
links, refusals and the OpenAPI schemas."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.api.telemetry import telemetry_router
from gateway.store.telemetry_queries import TelemetryReader
from gateway.store.telemetry_writer import TelemetryWriter
from tests.gateway.store.telemetry_data import (
    BASE_NS,
    MS,
    SpanSpec,
    log_fact,
    logs_batch,
    order_number,
    spans_batch,
    trace_hex,
)

N = 500
TRACE = [
    SpanSpec(1, None, "frontend", "GET /cart", 0, 100),
    SpanSpec(2, 1, "checkout", "checkout", 10, 90, error=True),
    SpanSpec(3, 2, "payments", "charge", 20, 30),
]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    path = Path(tmp_path_factory.mktemp("api")) / "otelgate.db"
    writer = TelemetryWriter(
        path, retention=86400, max_size_bytes=16 << 20, search_attributes=["http.route"],
        clock=lambda: BASE_NS / 1e9,
    )  # fmt: skip
    writer.write(logs_batch([log_fact(i, N) for i in range(N)]))
    writer.write(spans_batch(1, TRACE))  # log records 0-2 carry trace id 1
    writer.write(spans_batch(2, [SpanSpec(7, None, "checkout", "slow", 200, 900)]))
    writer.close()
    reader = TelemetryReader(path)
    app = FastAPI()
    app.include_router(telemetry_router(reader))
    with TestClient(app) as client:
        yield client
    reader.close()


def test_logs_newest_first_with_links(client: TestClient):
    answer = client.get("/logs", params={"limit": 5})
    assert answer.status_code == 200
    body = answer.json()
    assert len(body["logs"]) == 5
    assert body["next_cursor"]
    times = [r["time_unix_nano"] for r in body["logs"]]
    assert times == sorted(times, reverse=True)
    first = body["logs"][0]
    assert set(first) >= {
        "id", "time", "service", "severity_number", "severity_text", "body", "trace_id",
        "span_id", "attributes", "resource", "scope_name", "links",
    }  # fmt: skip
    assert datetime.fromisoformat(first["time"]).timestamp() == pytest.approx(times[0] / 1e9)


def test_a_traced_record_links_to_its_trace(client: TestClient):
    records = client.get("/logs", params={"trace_id": trace_hex(1)}).json()["logs"]
    assert sorted(order_number(r["body"]) for r in records) == [0, 1, 2]
    assert all(r["links"] == {"trace": f"/traces/{trace_hex(1)}"} for r in records)
    untraced = client.get("/logs", params={"q": "order-5"}).json()["logs"]
    assert [r["links"] for r in untraced] == [{}]


def test_every_page_once(client: TestClient):
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 64, "service": "checkout"}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/logs", params=params).json()
        seen.extend(order_number(r["body"]) for r in body["logs"])
        if (cursor := body["next_cursor"]) is None:
            break
    assert sorted(seen) == list(range(0, N, 4))


def test_filters(client: TestClient):
    def numbers(**params: str | float) -> list[int]:
        answer = client.get("/logs", params={"limit": 1000, **params})
        assert answer.status_code == 200, answer.text
        return sorted(order_number(r["body"]) for r in answer.json()["logs"])

    facts = [log_fact(i, N) for i in range(N)]
    assert numbers(q='"payment declined"') == [
        f.i for f in facts if f.body.startswith("payment declined")
    ]
    assert numbers(q="kiwiroute") == [f.i for f in facts if f.route == "/api/kiwiroute"]
    assert numbers(severity="error") == [f.i for f in facts if f.severity >= 17]
    assert numbers(severity="17") == numbers(severity="error")
    since, until = BASE_NS + 10 * MS, BASE_NS + 20 * MS
    expected = [f.i for f in facts if since <= f.time_ns < until]
    assert numbers(since=since / 1e9, until=until / 1e9) == expected
    rfc3339 = {
        "since": datetime.fromtimestamp(since / 1e9, UTC).isoformat(),
        "until": datetime.fromtimestamp(until / 1e9, UTC).isoformat().replace("+00:00", "Z"),
    }
    assert numbers(**rfc3339) == expected


@pytest.mark.parametrize(
    ("params", "status", "reason"),
    [
        ({"q": '"unclosed'}, 400, "unbalanced quote"),
        ({"q": "-only"}, 400, "no word to search for"),
        ({"trace_id": "abc"}, 400, "32 hex digits"),
        ({"span_id": "zz"}, 400, "16 hex digits"),
        ({"severity": "loud"}, 400, "unknown severity"),
        ({"cursor": "%%%"}, 400, "invalid cursor"),
        ({"cursor": "OTk5OTk5OTk5OTk5OTk5OTk5OTk5OjE"}, 400, "invalid cursor"),  # 10**21 - 1:1
        ({"limit": 0}, 422, "greater than or equal to 1"),
        ({"limit": 1001}, 422, "less than or equal to 1000"),
        ({"since": "yesterday"}, 422, "datetime"),
        ({"q": "x" * 1001}, 422, "at most 1000 characters"),
    ],
)
def test_bad_log_queries(client: TestClient, params: dict[str, str], status: int, reason: str):
    answer = client.get("/logs", params=params)
    assert answer.status_code == status
    assert reason in answer.text


def test_times_far_away_are_fine(client: TestClient):
    far = {"since": "0001-01-01T00:00:00Z", "until": "9999-12-31T23:59:59Z", "limit": 1}
    assert client.get("/logs", params=far).status_code == 200
    assert client.get("/traces", params={**far, "min_duration": 1e30}).json() == {"traces": []}
    assert client.get("/traces", params={"min_duration": "inf"}).status_code in (200, 422)


def test_one_trace(client: TestClient):
    answer = client.get(f"/traces/{trace_hex(1).upper()}")
    assert answer.status_code == 200
    body = answer.json()
    assert body["trace_id"] == trace_hex(1)
    assert [(s["name"], s["depth"]) for s in body["spans"]] == [
        ("GET /cart", 0), ("checkout", 1), ("charge", 2),
    ]  # fmt: skip
    assert body["logs"] == 3
    assert body["links"] == {"logs": f"/logs?trace_id={trace_hex(1)}"}
    assert body["span_count"] == 3 and body["duration_ms"] == 100.0
    assert body["services"] == ["checkout", "frontend", "payments"]
    checkout = body["spans"][1]
    assert (checkout["status_code"], checkout["status_message"]) == ("error", "boom")
    assert checkout["duration_ms"] == 80.0
    assert checkout["resource"] == {"service.name": "checkout"}


def test_unknown_and_malformed_trace_ids(client: TestClient):
    missing = client.get(f"/traces/{trace_hex(404)}")
    assert missing.status_code == 404
    assert trace_hex(404) in missing.json()["detail"]
    for bad in ("abc", "x" * 32, "0" * 32):
        answer = client.get(f"/traces/{bad}")
        assert answer.status_code == 400, bad
        assert "trace id" in answer.json()["detail"]


def test_trace_search(client: TestClient):
    def found(**params: str | float) -> list[str]:
        answer = client.get("/traces", params=params)
        assert answer.status_code == 200, answer.text
        return [t["trace_id"] for t in answer.json()["traces"]]

    assert found() == [trace_hex(2), trace_hex(1)]
    assert found(status="error") == [trace_hex(1)]
    assert found(status="ok") == [trace_hex(2)]
    assert found(min_duration=0.5) == [trace_hex(2)]
    assert found(service="payments") == [trace_hex(1)]
    assert found(until=(BASE_NS + 150 * MS) / 1e9) == [trace_hex(1)]
    summary = client.get("/traces", params={"name": "charge"}).json()["traces"][0]
    assert summary["root_service"] == "frontend" and summary["root_name"] == "GET /cart"
    assert (summary["span_count"], summary["error_count"], summary["has_root"]) == (3, 1, True)
    assert summary["links"] == {"trace": f"/traces/{trace_hex(1)}"}


@pytest.mark.parametrize("params", [{"status": "bad"}, {"min_duration": -1}, {"limit": 0}])
def test_bad_trace_queries(client: TestClient, params: dict[str, str | int]):
    assert client.get("/traces", params=params).status_code == 422


def test_a_store_not_open_yet_answers_503():
    reader: list[TelemetryReader] = []
    app = FastAPI()
    app.include_router(telemetry_router(lambda: reader[0] if reader else None))
    with TestClient(app) as client:
        for url in ("/logs", "/traces", f"/traces/{trace_hex(1)}"):
            answer = client.get(url)
            assert answer.status_code == 503
            assert "not open" in answer.json()["detail"]


def test_openapi_documents_the_responses(client: TestClient):
    schema = client.get("/openapi.json").json()
    assert {"/logs", "/traces", "/traces/{trace_id}"} <= set(schema["paths"])
    assert {"LogList", "LogView", "TraceDetail", "SpanView", "TraceList",
            "TraceSummaryView"} <= set(schema["components"]["schemas"])  # fmt: skip
    ok = schema["paths"]["/logs"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"] == {"$ref": "#/components/schemas/LogList"}
