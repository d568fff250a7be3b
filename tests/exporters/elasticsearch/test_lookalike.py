"""The Elasticsearch look-alike (tests/support/elasticsearch_server.py) driven by the official
``elasticsearch`` client (its requests accepted, our answers parsed by it), and each rule it copies
from Elasticsearch (tests/support/REAL_ELASTICSEARCH.md) in a test that fails if the rule breaks."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from elasticsearch import AuthenticationException, BadRequestError, Elasticsearch, helpers

from tests.support.elasticsearch_server import ElasticsearchServer

TS = "2024-05-01T12:00:00Z"
NDJSON = {"content-type": "application/x-ndjson"}


@pytest.fixture
def es() -> Iterator[ElasticsearchServer]:
    with ElasticsearchServer() as server:
        yield server


def ndjson(*lines: Any) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def post(
    es: ElasticsearchServer, body: bytes, path: str = "/_bulk", **headers: str
) -> httpx.Response:
    return httpx.post(es.url + path, content=body, headers={**NDJSON, **headers}, timeout=10)


def statuses(answer: dict[str, Any]) -> list[int]:
    return [next(iter(item.values()))["status"] for item in answer["items"]]


def errors(answer: dict[str, Any]) -> list[dict[str, Any] | None]:
    return [next(iter(item.values())).get("error") for item in answer["items"]]


def creates(stream: str, *docs: Any) -> bytes:
    return ndjson(*(line for doc in docs for line in ({"create": {"_index": stream}}, doc)))


def test_the_official_client_talks_to_it_and_parses_per_item_answers() -> None:
    with ElasticsearchServer(api_keys={"a2V5OnNlY3JldA=="}) as es:
        client = Elasticsearch(es.url, api_key="a2V5OnNlY3JldA==")
        assert client.info()["version"]["number"].startswith("9.")
        assert client.ping()
        answer = client.bulk(operations=[
            {"create": {"_index": "logs-app-default"}}, {"@timestamp": TS, "n": 1},
            {"create": {"_index": "logs-app-default"}}, {"@timestamp": TS, "n": {"x": 1}},
            {"create": {"_index": "logs-app-default"}}, {"n": 2},
            {"index": {"_index": "logs-app-default"}}, {"@timestamp": TS},
            {"create": {"_index": "Logs-app-default"}}, {"@timestamp": TS},
            {"create": {"_index": "logs-app-default"}}, {"@timestamp": TS, "n": 3},
        ])  # fmt: skip
    assert answer["errors"] is True and statuses(answer.body) == [201, 400, 400, 400, 400, 201]
    kinds = [e and e["type"] for e in errors(answer.body)]
    assert kinds[1:5] == ["document_parsing_exception"] * 2 + [
        "illegal_argument_exception", "invalid_index_name_exception"]  # fmt: skip
    ok, ok2 = answer["items"][0]["create"], answer["items"][5]["create"]
    assert re.fullmatch(r"\.ds-logs-app-default-\d{4}\.\d{2}\.\d{2}-000001", ok["_index"])
    assert re.fullmatch(r"[A-Za-z0-9_-]{20}", ok["_id"]) and ok["result"] == "created"
    assert (ok["_version"], ok["_primary_term"], ok2["_seq_no"] - ok["_seq_no"]) == (1, 1, 1)
    assert es.documents("logs-app-default") == [
        {"@timestamp": TS, "n": 1},
        {"@timestamp": TS, "n": 3},
    ]
    assert es.data_streams() == ["logs-app-default"]
    request = es.requests[-1]
    assert (
        request.headers["content-type"]
        == "application/vnd.elasticsearch+x-ndjson; compatible-with=9"
    )
    assert request.headers["authorization"] == "ApiKey a2V5OnNlY3JldA=="
    assert [r.type for r in es.refusals] == kinds[1:5]


def test_the_bulk_helpers_report_the_bad_items_and_retry_only_429(es: ElasticsearchServer) -> None:
    client = Elasticsearch(es.url)
    docs = [{"_op_type": "create", "_index": "logs-a-b", "_source": {"@timestamp": TS, "i": i}}
            for i in range(6)]  # fmt: skip
    docs[2]["_source"] = {"i": 2}  # no @timestamp
    done, failed = helpers.bulk(client, docs, raise_on_error=False)
    assert done == 5 and isinstance(failed, list)
    assert (
        failed[0]["create"]["status"] == 400
        and "@timestamp" in failed[0]["create"]["error"]["reason"]
    )
    es.reject_next_items(2, status=429)
    es.reject_next_items(1, status=503)
    more = [{**d, "_source": {"@timestamp": TS, "i": 10 + n}} for n, d in enumerate(docs[:4])]
    results = list(helpers.streaming_bulk(client, more, max_retries=2, initial_backoff=0.01,
                                          raise_on_error=False))  # fmt: skip
    assert [ok for ok, _ in results].count(False) == 1  # the 503: the helper retries 429 only
    assert sorted(d["i"] for d in es.documents() if d["i"] >= 10) == [10, 11, 13]
    assert [r.status for r in es.refusals][-3:] == [429, 429, 503]
    es.reject_next_items(1)
    with pytest.raises(helpers.BulkIndexError):  # raise_on_error (the default) does not retry
        list(helpers.streaming_bulk(client, more[:1], max_retries=3, initial_backoff=0.01))


def test_http_compress_gzip_bodies_and_whole_request_retries(es: ElasticsearchServer) -> None:
    client = Elasticsearch(es.url, http_compress=True)
    es.fail_next(429, retry_after="1", times=2)  # the client retries 429/502/503/504 itself
    client.bulk(operations=[{"create": {"_index": "logs-a-b"}}, {"@timestamp": TS}])
    assert [r.status for r in es.requests] == [429, 429, 200]
    assert es.requests[-1].headers["content-encoding"] == "gzip"
    assert es.requests[-1].body.endswith(b'{"@timestamp":"2024-05-01T12:00:00Z"}\n')
    answer = post(es, gzip.compress(creates("logs-a-b", {"@timestamp": TS})),
                  **{"content-encoding": "gzip", "accept-encoding": "gzip"})  # fmt: skip
    assert answer.headers["content-encoding"] == "gzip" and statuses(answer.json()) == [201]


def test_whole_request_failures_have_elasticsearch_bodies(es: ElasticsearchServer) -> None:
    es.fail_next(429, retry_after="7")
    es.fail_next(503, body="upstream down")
    first, second = post(es, creates("logs-a-b", {"@timestamp": TS})), post(es, b"{}\n")
    assert first.status_code == 429 and first.headers["retry-after"] == "7"
    assert first.json()["error"]["type"] == "circuit_breaking_exception"
    assert (second.status_code, second.text) == (503, "upstream down")
    assert first.headers["x-elastic-product"] == "Elasticsearch" and es.documents() == []


@pytest.mark.parametrize(
    ("content_type", "status", "message"),
    [
        ("application/json", 200, None),
        ("application/x-ndjson; charset=UTF-8", 200, None),
        ("text/plain", 406, "Content-Type header [text/plain] is not supported"),
        ("application/x-www-form-urlencoded", 406, "is not supported"),
        ("application/x-ndjson; charset=ISO-8859-1", 406, "is not supported"),
        ("application/yaml", 406, "does not support stream parsing. Use JSON or SMILE instead"),
        (None, 406, "Content-Type header is missing"),
    ],
)  # fmt: skip
def test_content_types(
    es: ElasticsearchServer, content_type: str | None, status: int, message: str | None
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    body = creates("logs-a-b", {"@timestamp": TS})
    answer = httpx.post(es.url + "/_bulk", content=body, headers=headers)
    assert answer.status_code == status
    if message:
        assert message in answer.json()["error"] and answer.json()["status"] == 406


def test_compatible_with_headers(es: ElasticsearchServer) -> None:
    body = creates("logs-a-b", {"@timestamp": TS})
    vnd = "application/vnd.elasticsearch+x-ndjson; compatible-with=8"
    accept8 = "application/vnd.elasticsearch+json; compatible-with=8"
    good = post(es, body, **{"content-type": vnd, "accept": accept8})
    assert good.status_code == 200
    assert good.headers["content-type"] == "application/vnd.elasticsearch+json;compatible-with=8"
    half = post(es, body, **{"content-type": vnd}).json()["error"]
    assert half["type"] == "media_type_header_exception"
    assert half["caused_by"]["reason"].startswith("A compatible version is required on both")
    with ElasticsearchServer(version="8.19.5") as old, pytest.raises(BadRequestError) as info:
        Elasticsearch(old.url).info()  # the 9.x client cannot talk to an 8.x server
    assert "Accept version must be either version 8 or 7, but found 9" in str(info.value.body)


@pytest.mark.parametrize(
    ("body", "kind", "reason"),
    [
        (b'{"create":{}}\n{"a":1}', "illegal_argument_exception",
         "The bulk request must be terminated by a newline [\\n]"),
        (b'{"create" {}}\n{}\n', "x_content_parse_exception", "Unexpected character"),
        (b'{"create": {"_index": \n', "x_content_e_o_f_exception", "Unexpected end of file"),
        (b'{"upsert":{}}\n{}\n', "illegal_argument_exception",
         "expected field [create], [delete], [index] or [update] but found [upsert]"),
        (b"[1]\n", "illegal_argument_exception", "expected START_OBJECT but found [START_ARRAY]"),
        (b'{"create":{"_index":"x","colour":1}}\n{}\n', "illegal_argument_exception",
         "Action/metadata line [1] contains an unknown parameter [colour]"),
        (b'{"delete":{"_index":"x"}}\n{"update":{"_index":"x"}}\n{"doc":{}}\n',
         "action_request_validation_exception",
         "Validation Failed: 1: id is missing;2: id is missing;"),
        (b"", "parse_exception", "request body is required"),
    ],
)  # fmt: skip
def test_what_refuses_the_whole_request(
    es: ElasticsearchServer, body: bytes, kind: str, reason: str
) -> None:
    answer = post(es, body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["type"], error["root_cause"][0]["type"]) == (kind, kind) and reason in error[
        "reason"
    ]
    assert es.documents() == [] and es.requests[-1].status == 400


def test_a_source_that_is_not_json_fails_alone(es: ElasticsearchServer) -> None:
    body = (creates("logs-a-b", {"@timestamp": TS}) + b'{"create":{"_index":"logs-a-b"}}\n{"a": }\n'
            + b'{"create":{"_index":"logs-a-b"}}\n{"@timestamp":"x","a":1,"a":2}\n')  # fmt: skip
    answer = post(es, body).json()
    assert statuses(answer) == [201, 400, 400]
    assert [e and e["type"] for e in errors(answer)][1:] == ["document_parsing_exception"] * 2
    assert "Duplicate field 'a'" in (errors(answer)[2] or {})["reason"]


def test_data_streams_take_only_create(es: ElasticsearchServer) -> None:
    post(es, creates("logs-a-b", {"@timestamp": TS}))
    body = ndjson({"index": {"_index": "logs-a-b"}}, {"@timestamp": TS},
                  {"update": {"_index": "logs-a-b", "_id": "1"}}, {"doc": {"x": 1}},
                  {"delete": {"_index": "logs-a-b", "_id": "1"}},
                  {"index": {"_index": "logs-a-b", "op_type": "create"}}, {"@timestamp": TS},
                  {"delete": {"_index": "nothing-here", "_id": "1"}})  # fmt: skip
    answer = post(es, body).json()
    assert statuses(answer) == [400, 400, 400, 201, 404]
    reasons = [e and e["reason"] for e in errors(answer)]
    assert (
        reasons[:3] == ["only write ops with an op_type of create are allowed in data streams"] * 3
    )
    assert (errors(answer)[4] or {})["type"] == "index_not_found_exception"


@pytest.mark.parametrize(
    ("name", "problem"),
    [("Logs-a-b", "must be lowercase"), ("a b", "must not contain the following characters"),
     ("a\\b", "must not contain the following"), ("a*b", "must not contain the following"),
     ("a,b", "must not contain the following"), ("a#b", "must not contain '#'"),
     ("a:b", "must not contain ':'"), ("_a", "must not start with '_', '-', or '+'"),
     ("-a", "must not start"), ("+a", "must not start"), ("..", "must not be '.' or '..'"),
     ("a" * 256, "index name is too long, (256 > 255)")],
)  # fmt: skip
def test_invalid_index_names_fail_their_item(
    es: ElasticsearchServer, name: str, problem: str
) -> None:
    answer = post(es, creates(name, {"@timestamp": TS}) + creates("logs-a-b", {"@timestamp": TS}))
    assert statuses(answer.json()) == [400, 201]
    error = errors(answer.json())[0] or {}
    assert error["type"] == "invalid_index_name_exception" and problem in error["reason"]
    assert error["reason"].startswith(f"Invalid index name [{name}], ")


def test_dynamic_mapping_fixes_types_and_refuses_what_does_not_fit(es: ElasticsearchServer) -> None:
    docs = [
        ({"n": 1, "s": "x", "b": True, "f": 1.5, "o": {"k": "v"}}, None),
        ({"n": "12", "f": "2", "s": 5, "b": "false"}, None),  # coerced
        ({"n": "abc"}, "failed to parse field [n] of type [long] in document with id"),
        ({"b": "yes"}, "failed to parse field [b] of type [boolean]"),
        ({"f": True}, "failed to parse field [f] of type [float]"),
        ({"o": "flat"}, "object mapping for [o] tried to parse field [o] as object, but found a"),
        ({"s": {"x": 1}}, "failed to parse field [s] of type [text]"),
        ({"o.k": "w", "o.new": 1}, None),  # dotted keys are the nested path
        ({"o": {"k": {"z": 1}}}, "failed to parse field [o.k] of type [text]"),
        ({"n.x": 1}, "failed to parse field [n] of type [long]"),
    ]  # fmt: skip
    for doc, problem in docs:
        answer = post(es, creates("plain", doc)).json()
        item = answer["items"][0]["create"]
        if problem is None:
            assert item["status"] == 201, item
            continue
        reason = item["error"]["reason"]
        assert item["status"] == 400 and item["error"]["type"] == "document_parsing_exception"
        assert problem in reason, reason
        assert f"'{item['_id']}'" in reason or problem.startswith("object mapping")
    assert "Preview of field's value: '{x=1}'" in es.refusals[-1].reason
    assert len(es.documents("plain")) == 3


def test_logs_streams_ignore_malformed_values_but_not_conflicts(es: ElasticsearchServer) -> None:
    docs = [
        ({"@timestamp": TS, "n": 1, "data_stream": {"dataset": "a"}}, 201),
        ({"@timestamp": TS, "n": "not a number", "data_stream.dataset": "a"}, 201),
        ({"@timestamp": TS, "n": {"x": 1}}, 400),  # an object never fits a long
        ({"@timestamp": "yesterday"}, 400),  # @timestamp is ignore_malformed: false
        ({"@timestamp": TS, "data_stream.dataset": "b"}, 400),  # constant_keyword
        ({"@timestamp": TS, "data_stream": {"type": "metrics"}}, 400),
        ({"@timestamp": 1714564800000}, 201),  # epoch_millis
    ]  # fmt: skip
    answer = post(es, creates("logs-a-b", *(doc for doc, _ in docs))).json()
    assert statuses(answer) == [status for _, status in docs]
    assert (
        "[constant_keyword] field [data_stream.dataset]"
        in (errors(answer)[4] or {})["caused_by"]["reason"]
    )
    traces = post(
        es, creates("traces-a-b", {"@timestamp": TS, "n": 1}, {"@timestamp": TS, "n": "x"})
    )
    assert statuses(traces.json()) == [201, 400]  # no ignore_malformed outside logs / metrics


def test_otel_streams_keep_attribute_keys_flat(es: ElasticsearchServer) -> None:
    docs = [
        {"@timestamp": TS, "attributes": {"http": "a", "http.method": "GET", "count": 1}, "x": 1},
        {"@timestamp": TS, "attributes": {"http.request": {"deep": 1}, "count": "many"}, "x": {}},
        {"@timestamp": TS, "attributes": {"count": {"x": 1}}},
    ]  # fmt: skip
    answer = post(es, creates("logs-app.otel-default", *docs)).json()
    assert statuses(answer) == [201, 201, 400]  # unmapped top-level fields are not judged


def test_plain_indices_create_index_update_delete(es: ElasticsearchServer) -> None:
    body = ndjson(
        {"index": {"_index": "plain", "_id": "1"}}, {"a": 1},
        {"index": {"_index": "plain", "_id": "1"}}, {"a": 2},
        {"create": {"_index": "plain", "_id": "1"}}, {"a": 3},
        {"update": {"_index": "plain", "_id": "1"}}, {"doc": {"b": 1}},
        {"update": {"_index": "plain", "_id": "1"}}, {"doc": {"b": 1}},
        {"update": {"_index": "plain", "_id": "2"}}, {"doc": {"b": 1}},
        {"update": {"_index": "plain", "_id": "3"}}, {"doc": {"b": 1}, "doc_as_upsert": True},
        {"delete": {"_index": "plain", "_id": "3"}},
    )  # fmt: skip
    answer = post(es, body).json()
    assert statuses(answer) == [201, 200, 409, 200, 200, 404, 201, 200]
    results = [next(iter(i.values())).get("result") for i in answer["items"]]
    assert results == ["created", "updated", None, "updated", "noop", None, "created", "deleted"]
    assert (errors(answer)[2] or {})["type"] == "version_conflict_engine_exception"
    assert (errors(answer)[5] or {})["type"] == "document_missing_exception"
    missing = post(es, ndjson({"delete": {"_index": "plain", "_id": "9"}})).json()
    assert (missing["errors"], statuses(missing)) == (False, [404])  # not_found is no error
    assert es.documents("plain") == [{"a": 2, "b": 1}] and es.data_streams() == []


def test_filter_path(es: ElasticsearchServer) -> None:
    body = creates("logs-a-b", {"@timestamp": TS}, {"n": 1})
    answer = post(es, body, "/_bulk?filter_path=errors,items.*.error,items.*.status").json()
    assert answer["errors"] is True and set(answer) == {"errors", "items"}
    assert answer["items"][0] == {"create": {"status": 201}}
    assert set(answer["items"][1]["create"]) == {"status", "error"}
    clean = post(
        es, creates("logs-a-b", {"@timestamp": TS}), "/_bulk?filter_path=errors,items.*.error"
    )
    assert clean.json() == {"errors": False}
    took = post(
        es, creates("logs-a-b", {"@timestamp": TS}), "/_bulk?filter_path=took,items.*._index"
    )
    assert set(took.json()) == {"took", "items"} and took.json()["items"][0]["create"]["_index"]


def test_query_parameters(es: ElasticsearchServer) -> None:
    body = creates("logs-a-b", {"@timestamp": TS})
    unknown = post(es, body, "/_bulk?colour=red").json()["error"]
    assert unknown["reason"] == "request [/_bulk] contains unrecognized parameter: [colour]"
    assert post(es, body, "/_bulk?refresh=maybe").status_code == 400
    item = post(es, body, "/logs-a-b/_bulk?refresh=true").json()["items"][0]["create"]
    assert item["forced_refresh"] is True
    unknown_pipeline = post(es, body, "/_bulk?pipeline=enrich").json()
    assert (
        "pipeline with id [enrich] does not exist" in (errors(unknown_pipeline)[0] or {})["reason"]
    )
    with ElasticsearchServer(pipelines={"enrich"}) as other:
        assert statuses(post(other, body, "/_bulk?pipeline=enrich").json()) == [201]


def test_bodies_over_max_content_length_get_netty_s_413() -> None:
    with ElasticsearchServer(max_content_length=2000) as es:
        big = creates("logs-a-b", *({"@timestamp": TS, "pad": "x" * 100} for _ in range(30)))
        for body, headers in ((big, {}), (gzip.compress(big), {"content-encoding": "gzip"})):
            answer = post(es, body, **headers)
            assert (answer.status_code, answer.content) == (413, b"")
            assert (
                answer.headers["connection"] == "close"
                and "x-elastic-product" not in answer.headers
            )
        assert post(es, creates("logs-a-b", {"@timestamp": TS})).status_code == 200
        assert [r.status for r in es.requests] == [413, 413, 200]


def test_authentication() -> None:
    with ElasticsearchServer(api_keys={"a2V5OnNlY3JldA=="}, users={"elastic": "pw"}) as es:
        body = creates("logs-a-b", {"@timestamp": TS})
        none = post(es, body)
        assert none.status_code == 401 and none.headers["x-elastic-product"] == "Elasticsearch"
        challenges = [
            'Basic realm="security", charset="UTF-8"',
            'Bearer realm="security"',
            "ApiKey",
        ]
        assert none.headers.get_list("www-authenticate") == challenges
        assert (
            none.json()["error"]["reason"]
            == "missing authentication credentials for REST request [/_bulk]"
        )
        wrong = post(es, body, authorization="ApiKey d3Jvbmc6a2V5").json()["error"]
        assert (
            wrong["additional_unsuccessful_credentials"]
            == "API key: unable to find apikey with id wrong"
        )
        bad_user = httpx.post(
            es.url + "/_bulk", content=body, headers=NDJSON, auth=("elastic", "no")
        )
        assert bad_user.json()["error"]["reason"].startswith(
            "unable to authenticate user [elastic]"
        )
        assert httpx.post(
            es.url + "/_bulk", content=body, headers=NDJSON, auth=("elastic", "pw")
        ).is_success
        assert post(es, body, authorization="ApiKey a2V5OnNlY3JldA==").is_success
        with pytest.raises(AuthenticationException):
            Elasticsearch(es.url, api_key="nope").info()
        assert len(es.documents()) == 2
