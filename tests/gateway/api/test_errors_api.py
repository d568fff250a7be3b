"""The error-tracking API: list, filter, sort, paginate, detail with samples, status changes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.api.errors import errors_router
from gateway.error_tracking.config import ErrorTrackingConfig
from gateway.error_tracking.persistence import ErrorStore
from gateway.error_tracking.service import ErrorTrackingService
from gateway.error_tracking.tracker import ErrorTracker
from gateway.store.sqlite import MEMORY, SqliteStore
from tests.gateway.error_tracking.batches import (
    OTHER_STACK,
    resource,
    span_with_exception,
    traces,
)


@pytest.fixture
def service() -> ErrorTrackingService:
    now = [1_700_000_000.0]
    tracker = ErrorTracker(ErrorTrackingConfig(), clock=lambda: now[0])
    found = ErrorTrackingService(tracker, flush_interval=60)
    found.store = ErrorStore(SqliteStore(MEMORY), 10)
    for _ in range(3):
        tracker.observe(traces(span_with_exception()))
    now[0] += 100  # groups are seen when they arrive
    other = span_with_exception("KeyError", "'o-1'", OTHER_STACK)
    tracker.observe(traces(other, res=resource(service="billing")))
    return found


@pytest.fixture
def client(service: ErrorTrackingService) -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(errors_router(service))
    with TestClient(app) as test_client:
        yield test_client


def test_list_sorted_filtered_and_paginated(client: TestClient) -> None:
    page = client.get("/errors").json()
    assert page["total"] == 2 and page["next_offset"] is None
    assert [g["type"] for g in page["groups"]] == ["KeyError", "ValueError"]  # last seen first
    by_count = client.get("/errors", params={"sort": "count"}).json()["groups"]
    assert [g["count"] for g in by_count] == [3, 1]
    only = client.get("/errors", params={"service": "billing"}).json()
    assert [g["services"] for g in only["groups"]] == [["billing"]]
    first = client.get("/errors", params={"limit": 1}).json()
    assert first["next_offset"] == 1 and len(first["groups"]) == 1
    rest = client.get("/errors", params={"limit": 1, "offset": 1}).json()
    assert {first["groups"][0]["id"], rest["groups"][0]["id"]} == {g["id"] for g in page["groups"]}
    since = client.get("/errors", params={"since": "2023-11-14T22:14:00Z"}).json()
    assert [g["type"] for g in since["groups"]] == ["KeyError"]
    assert client.get("/errors", params={"status": "nope"}).status_code == 422
    assert client.get("/errors", params={"limit": 0}).status_code == 422


def test_detail_has_samples_linked_to_the_trace(client: TestClient) -> None:
    group = client.get("/errors", params={"sort": "count"}).json()["groups"][0]
    detail = client.get(f"/errors/{group['id']}").json()
    assert detail["message"] == "cart <num> is empty"
    assert detail["frames"][0]["function"] == "create"
    assert len(detail["samples"]) == 3
    sample = detail["samples"][0]
    assert sample["links"]["trace"] == f"/traces/{sample['trace_id']}"
    assert sample["links"]["logs"] == f"/logs?trace_id={sample['trace_id']}"
    assert "raise ValueError" in sample["stacktrace"]
    assert sample["attributes"] == {"http.route": "/checkout"}
    missing = client.get("/errors/0000")
    assert missing.status_code == 404 and "0000" in missing.json()["detail"]


def test_status_changes(client: TestClient, service: ErrorTrackingService) -> None:
    group_id = client.get("/errors", params={"sort": "count"}).json()["groups"][0]["id"]
    resolved = client.post(f"/errors/{group_id}/resolve", json={"by": "dana"}).json()
    assert (resolved["status"], resolved["status_changed_by"]) == ("resolved", "dana")
    assert client.get("/errors", params={"status": "resolved"}).json()["total"] == 1
    assert client.post(f"/errors/{group_id}/ignore").json()["status"] == "ignored"
    assert client.post(f"/errors/{group_id}/unresolve").json()["status"] == "unresolved"
    assert client.post("/errors/nope/resolve").status_code == 404
    assert service.store is not None
    assert {g.id: g.status for g in service.store.load(10)}[group_id] == "unresolved"


def test_the_models_are_in_the_openapi_document(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert {"GroupPage", "GroupDetail", "SampleView"} <= set(schema["components"]["schemas"])
    assert "/errors/{group_id}/resolve" in schema["paths"]
