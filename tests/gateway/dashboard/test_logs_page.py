"""The Logs page (``/ui/logs``) over a real telemetry store written by the real writer:
search, filters, pages, escaping, refusals (the live tail: test_logs_tail.py)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gateway.store.telemetry_queries import TelemetryReader
from tests.gateway.dashboard.pages import (
    assert_csp_clean,
    body_cells,
    dashboard,
    gateway,
    log_batch,
    numbers,
    writer_at,
)
from tests.gateway.store.telemetry_data import (
    BASE_NS,
    MS,
    log_fact,
    logs_batch,
    trace_hex,
)

pytestmark = pytest.mark.timeout(30)
N = 240
HOSTILE = '<script>alert("x")</script>'
HOSTILE_SERVICE = '"><img src=x onerror=alert(1)>'


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
