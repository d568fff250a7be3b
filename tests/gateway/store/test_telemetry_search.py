"""Log search over 100 000 stored records: full-text queries, filters, their combinations,
cursor pagination, and queries that must be refused."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.store.telemetry_queries import TelemetryReader
from gateway.store.telemetry_records import LogQuery
from gateway.store.telemetry_writer import TelemetryWriter
from tests.gateway.store.telemetry_data import (
    BASE_NS,
    MS,
    SEARCHABLE,
    SECRET,
    LogFact,
    expected,
    log_fact,
    logs_batch,
    order_number,
)

N = 100_000
BATCH = 1000
NOW = BASE_NS / 1e9 + 3600


@pytest.fixture(scope="module")
def facts() -> list[LogFact]:
    return [log_fact(i, N) for i in range(N)]


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory, facts: list[LogFact]) -> Iterator[
    TelemetryReader
]:  # fmt: skip
    path = Path(tmp_path_factory.mktemp("search")) / "otelgate.db"
    writer = TelemetryWriter(
        path, retention=7 * 86400, max_size_bytes=1 << 30, search_attributes=SEARCHABLE,
        clock=lambda: NOW,
    )  # fmt: skip
    started = time.perf_counter()
    written = sum(writer.write(logs_batch(facts[k : k + BATCH])) for k in range(0, N, BATCH))
    assert written == N
    assert time.perf_counter() - started < 60
    writer.close()
    reader = TelemetryReader(path)
    yield reader
    reader.close()


def found(reader: TelemetryReader, query: LogQuery) -> list[int]:
    """Every matching record's ``i``, walking all pages."""
    seen: list[int] = []
    cursor = None
    while True:
        page = reader.search_logs(dataclasses.replace(query, cursor=cursor))
        assert len(page.records) <= query.limit
        seen.extend(order_number(r.body) for r in page.records)
        if page.next_cursor is None:
            return seen
        assert len(page.records) == query.limit
        cursor = page.next_cursor


def first_page(reader: TelemetryReader, **filters: object) -> list[int]:
    page = reader.search_logs(LogQuery(limit=1000, **filters))  # type: ignore[arg-type]
    return [order_number(r.body) for r in page.records]


def has_phrase(fact: LogFact, *words: str) -> bool:
    tokens = fact.tokens
    n = len(words)
    return any(tuple(tokens[k : k + n]) == words for k in range(len(tokens) - n + 1))


# --- full-text queries --------------------------------------------------------------------


def test_a_word(reader: TelemetryReader, facts: list[LogFact]):
    want = expected(facts, lambda f: "timeout" in f.tokens)
    assert 10_000 < len(want) < 25_000
    assert first_page(reader, q="timeout") == want[:1000]
    assert first_page(reader, q="TIMEOUT") == want[:1000]  # case-insensitive


def test_a_phrase(reader: TelemetryReader, facts: list[LogFact]):
    want = expected(facts, lambda f: has_phrase(f, "payment", "declined"))
    assert want
    assert first_page(reader, q='"payment declined"') == want[:1000]
    assert first_page(reader, q="declined payment") == want[:1000]  # "declined" is only there
    assert first_page(reader, q='"declined payment"') == []  # words in that order: nowhere
    assert (
        first_page(reader, q='"checkout-db"')
        == expected(facts, lambda f: has_phrase(f, "checkout", "db"))[:1000]
    )


def test_a_prefix(reader: TelemetryReader, facts: list[LogFact]):
    want = expected(facts, lambda f: any(t.startswith("retr") for t in f.tokens))
    assert {"retrying", "retried"} <= {t for f in facts[:50] for t in f.tokens}
    assert first_page(reader, q="retr*") == want[:1000]


def test_terms_are_anded(reader: TelemetryReader, facts: list[LogFact]):
    want = expected(facts, lambda f: {"timeout", "gateway"} <= set(f.tokens))
    assert 0 < len(want) < 10_000
    assert found(reader, LogQuery(q="timeout gateway", limit=1000)) == want


def test_an_excluded_term(reader: TelemetryReader, facts: list[LogFact]):
    tokens = {"payment"}
    want = expected(facts, lambda f: tokens <= set(f.tokens) and "declined" not in f.tokens)
    assert first_page(reader, q="payment -declined") == want[:1000]


def test_a_word_only_in_a_searchable_attribute(reader: TelemetryReader, facts: list[LogFact]):
    want = expected(facts, lambda f: f.route == "/api/kiwiroute")
    assert not any("kiwiroute" in f.body for f in facts)
    assert found(reader, LogQuery(q="kiwiroute", service="payments", limit=1000)) == [
        i for i in want if facts[i].service == "payments"
    ]


def test_a_word_in_an_attribute_that_is_not_searchable_is_not_found(reader: TelemetryReader):
    assert reader.search_logs(LogQuery(q=SECRET)).records == []


def test_a_record_comes_back_whole(reader: TelemetryReader, facts: list[LogFact]):
    traced = next(f for f in facts if f.trace_id is not None and f.secret)
    page = reader.search_logs(LogQuery(q=f"order-{traced.i}", limit=5))
    record = next(r for r in page.records if order_number(r.body) == traced.i)
    assert record.body == traced.body
    assert record.service == traced.service
    assert record.time_unix_nano == traced.time_ns
    assert record.observed_time_unix_nano == traced.time_ns + MS
    assert record.severity_number == traced.severity
    assert traced.trace_id is not None and traced.span_id is not None
    assert record.trace_id == traced.trace_id.hex()
    assert record.span_id == traced.span_id.hex()
    assert record.attributes == {
        "http.route": traced.route, "order.id": str(traced.i), "user.note": SECRET,
    }  # fmt: skip
    assert record.resource == {"service.name": traced.service, "host.name": "node-1"}
    assert record.scope_name == "app.log"


# --- filters ------------------------------------------------------------------------------


def test_service(reader: TelemetryReader, facts: list[LogFact]):
    assert (
        first_page(reader, service="inventory")
        == expected(facts, lambda f: f.service == "inventory")[:1000]
    )
    assert reader.search_logs(LogQuery(service="nope")).records == []


@pytest.mark.parametrize(("severity", "minimum"), [("warn", 13), ("ERROR", 17), (21, 21), ("9", 9)])
def test_minimum_severity(reader: TelemetryReader, facts: list[LogFact], severity, minimum):
    assert (
        first_page(reader, severity=severity)
        == expected(facts, lambda f: f.severity >= minimum)[:1000]
    )


def test_trace_and_span_id(reader: TelemetryReader, facts: list[LogFact]):
    trace_id = facts[4230].trace_id
    assert trace_id is not None
    want = expected(facts, lambda f: f.trace_id == trace_id)
    assert len(want) == 3
    assert first_page(reader, trace_id=trace_id.hex()) == want
    assert first_page(reader, trace_id=trace_id.hex().upper()) == want
    span_id = facts[4231].span_id
    assert span_id is not None
    assert first_page(reader, trace_id=trace_id.hex(), span_id=span_id.hex()) == [4231]


def test_time_range(reader: TelemetryReader, facts: list[LogFact]):
    since, until = BASE_NS + 1000 * MS, BASE_NS + 1500 * MS
    want = expected(facts, lambda f: since <= f.time_ns < until)
    assert len(want) == 1000
    assert first_page(reader, since=since / 1e9, until=until / 1e9) == want


def test_combinations(reader: TelemetryReader, facts: list[LogFact]):
    since, until = BASE_NS + 5000 * MS, BASE_NS + 30_000 * MS

    def keep(f: LogFact) -> bool:
        return (
            f.service == "checkout" and f.severity >= 13 and since <= f.time_ns < until
            and "payment" in f.tokens
        )  # fmt: skip

    want = expected(facts, keep)
    assert 1000 < len(want) < 10_000
    query = LogQuery(
        q="payment", service="checkout", severity="warn", since=since / 1e9, until=until / 1e9,
        limit=1000,
    )  # fmt: skip
    assert found(reader, query) == want
    trace_id = facts[1000].trace_id
    assert trace_id is not None
    both = expected(facts, lambda f: f.trace_id == trace_id and "kiwiroute" in f.tokens)
    assert first_page(reader, trace_id=trace_id.hex(), q="kiwiroute") == both


# --- pagination ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        LogQuery(service="checkout", severity="warn", limit=1000),
        LogQuery(q="payment", limit=777),
        LogQuery(limit=1000),
    ],
    ids=["filters", "full-text", "everything"],
)
def test_pages_see_every_record_once_newest_first(
    reader: TelemetryReader, facts: list[LogFact], query: LogQuery
):
    def keep(f: LogFact) -> bool:
        return (
            (query.service is None or f.service == query.service)
            and (query.severity is None or f.severity >= 13)
            and (query.q is None or "payment" in f.tokens)
        )

    got = found(reader, query)
    assert got == expected(facts, keep)
    assert len(got) == len(set(got))


def test_the_last_page_has_no_cursor(reader: TelemetryReader, facts: list[LogFact]):
    trace_id = facts[0].trace_id
    assert trace_id is not None
    page = reader.search_logs(LogQuery(trace_id=trace_id.hex(), limit=3))
    assert len(page.records) == 3
    assert page.next_cursor is None
    page = reader.search_logs(LogQuery(trace_id=trace_id.hex(), limit=2))
    assert page.next_cursor is not None
    rest = reader.search_logs(LogQuery(trace_id=trace_id.hex(), limit=2, cursor=page.next_cursor))
    assert len(rest.records) == 1 and rest.next_cursor is None


# --- refused ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (LogQuery(q='"payment declined'), "unbalanced quote"),
        (LogQuery(q="-payment"), "no word to search for"),
        (LogQuery(q="*** ---"), "no word to search for"),
        (LogQuery(q="x" * 1001), "longer than"),
        (LogQuery(trace_id="abc"), "32 hex digits"),
        (LogQuery(trace_id="g" * 32), "32 hex digits"),
        (LogQuery(trace_id="0" * 32), "all-zero"),
        (LogQuery(span_id="12"), "16 hex digits"),
        (LogQuery(severity="loud"), "unknown severity"),
        (LogQuery(severity=99), "not in 1-24"),
        (LogQuery(cursor="not a cursor!"), "invalid cursor"),
        (LogQuery(limit=0), "limit"),
        (LogQuery(limit=1001), "limit"),
    ],
)
def test_bad_queries_raise_value_error(reader: TelemetryReader, query: LogQuery, message: str):
    with pytest.raises(ValueError, match=message):
        reader.search_logs(query)


@pytest.mark.parametrize(
    "q", ["payment AND OR NOT", "body:payment", "NEAR(a b)", "(payment", "a + b", "^x", "it's"]
)
def test_fts_syntax_in_user_input_is_just_text(reader: TelemetryReader, q: str):
    reader.search_logs(LogQuery(q=q))  # no error: every term is quoted


# --- the live tail's reads ---------------------------------------------------------------


def test_after_id_reads_in_storage_order_with_the_filters(reader: TelemetryReader):
    last = reader.last_log_id()
    newest = reader.search_logs(LogQuery(limit=1)).records[0].id
    assert last >= newest
    everything = reader.search_logs(LogQuery(after_id=0, limit=1000))
    ids = [r.id for r in everything.records]
    assert ids == sorted(ids) and everything.next_cursor is None
    middle = ids[len(ids) // 2]
    later = reader.search_logs(LogQuery(after_id=middle, limit=1000)).records
    expected = [i for i in ids if i > middle]  # the first read's ids after the middle one
    assert [r.id for r in later][: len(expected)] == expected
    severe = reader.search_logs(LogQuery(after_id=middle, severity="error", limit=1000))
    assert all(r.severity_number >= 17 and r.id > middle for r in severe.records)
    assert reader.search_logs(LogQuery(after_id=last, limit=10)).records == []
    with pytest.raises(ValueError, match="cannot be combined"):
        reader.search_logs(LogQuery(after_id=0, cursor=everything.next_cursor or "x"))
