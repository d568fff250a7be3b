"""``GET /audit``: newest first, a seq cursor, filters, the head to anchor a later verify."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.api.audit import audit_router
from gateway.audit.reader import read_page
from gateway.audit.trail import AuditTrail
from gateway.audit.verify import verify
from tests.gateway.audit.helpers import Clock, make_trail


@pytest.fixture
def trail(tmp_path: Path) -> Iterator[AuditTrail]:
    clock = Clock()
    found = make_trail(tmp_path / "audit.jsonl", clock, max_size=3000, auth_failures_per_minute=5)
    found.open()
    for i in range(30):
        found.record("config.reload", "ops" if i % 2 else "ci", {"i": i})
        found.note_auth_failure("bad token", f"10.0.0.{i}")
    found.record("alert.ack", "ops", {"alert": "HighCpu"})
    clock.advance(60)
    found.flush()
    yield found
    found.close()


@pytest.fixture
def client(trail: AuditTrail) -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(audit_router(trail))
    with TestClient(app) as test_client:
        yield test_client


def test_pages_newest_first_across_rotated_files(client: TestClient, trail: AuditTrail) -> None:
    assert len(trail.files()) >= 3
    head = trail.head
    assert head is not None
    page = client.get("/audit", params={"limit": 10}).json()
    assert page["head"] == {"seq": head.seq, "hash": head.hash, "file": "audit.jsonl"}
    assert page["entries"][0]["seq"] == head.seq and page["entries"][0]["hash"] == head.hash
    seen = []
    cursor = None
    while True:
        params = {"limit": 10} | ({"before_seq": cursor} if cursor else {})
        page = client.get("/audit", params=params).json()
        seen += page["entries"]
        cursor = page["next"]
        if cursor is None:
            break
    assert [e["seq"] for e in seen] == list(range(head.seq, 0, -1))
    for newer, older in itertools.pairwise(seen):
        assert newer["prev"] == older["hash"]  # each entry's hash is the next one's prev
    assert {e["file"] for e in seen} == {p.name for p in trail.files()}
    assert verify(trail.files(), head=page["head"]["hash"]).ok


def test_filters(client: TestClient) -> None:
    auth = client.get("/audit", params={"action": "auth", "limit": 100}).json()["entries"]
    assert {e["action"] for e in auth} == {"auth.failure", "auth.failure.suppressed"}
    assert len([e for e in auth if e["action"] == "auth.failure"]) == 5
    suppressed = [e for e in auth if e["action"] == "auth.failure.suppressed"]
    assert suppressed[0]["details"]["suppressed"] == 25
    exact = client.get("/audit", params={"action": "auth.failure.suppressed"}).json()
    assert len(exact["entries"]) == 1
    assert client.get("/audit", params={"action": "aut"}).json()["entries"] == []
    ops = client.get("/audit", params={"actor": "ops", "action": "alert"}).json()["entries"]
    assert [(e["action"], e["details"]) for e in ops] == [("alert.ack", {"alert": "HighCpu"})]
    older = client.get("/audit", params={"actor": "ci", "before_seq": 10}).json()["entries"]
    assert older and all(e["seq"] < 10 and e["actor"] == "ci" for e in older)


def test_bad_queries(client: TestClient) -> None:
    assert client.get("/audit", params={"limit": 0}).status_code == 422
    assert client.get("/audit", params={"limit": 1001}).status_code == 422
    assert client.get("/audit", params={"before_seq": 0}).status_code == 422


def test_a_page_scans_a_bounded_number_of_entries(trail: AuditTrail) -> None:
    page = read_page(trail.files(), trail.linker, limit=10, actor="nobody", max_scan=7)
    assert page.entries == [] and page.scanned == 7
    head = trail.head
    assert head is not None and page.next == head.seq - 6  # continue from there
    rest = read_page(trail.files(), trail.linker, limit=10, actor="nobody", before_seq=page.next)
    assert rest.next is None and rest.scanned == head.seq - 7


def test_an_empty_trail(tmp_path: Path) -> None:
    app = FastAPI()
    app.include_router(audit_router(make_trail(tmp_path / "none" / "audit.jsonl")))
    with TestClient(app) as test_client:
        assert test_client.get("/audit").json() == {
            "entries": [], "next": None, "scanned": 0, "head": None,
        }  # fmt: skip
