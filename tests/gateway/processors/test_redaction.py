"""The redaction processor on the three signals: key precedence, nested values, log bodies,
what happens to the received bytes, counters and summaries."""

from __future__ import annotations

from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from prometheus_client import CollectorRegistry

from gateway.otlp.batch import Batch, ExportRequest, Signal
from tests.gateway.processors.redaction_helpers import (
    CARD,
    EMAIL,
    any_value,
    first_record,
    first_resource,
    first_span,
    logs,
    metrics,
    metrics_of,
    plain,
    processor,
    received,
    run,
    traces,
)


def masked(registry: CollectorRegistry, rule: str, name: str = "redaction") -> float | None:
    labels = {"processor": name, "rule": rule}
    return registry.get_sample_value("otelgate_redaction_masked_total", labels)


def dropped(registry: CollectorRegistry, reason: str, name: str = "redaction") -> float | None:
    labels = {"processor": name, "reason": reason}
    return registry.get_sample_value("otelgate_redaction_dropped_total", labels)


def span_attributes(batch: Batch) -> dict[str, object]:
    return plain(first_span(batch).attributes)


def test_key_rules_in_order_of_precedence() -> None:
    registry = CollectorRegistry()
    proc = processor(
        registry,
        allowed_keys=["http.*", "user.*", "db.password", "session", "keep.*", "payment.*"],
        blocked_keys=["http.request.header.cookie", "keep.blocked"],
        masked_keys=["session", "user.token*"],
        ignored_keys=["keep.*"],
    )
    request = traces(
        {
            "http.method": "GET",  # allowed, scanned, clean
            "http.request.header.cookie": "a=b",  # allowed but blocked: dropped
            "keep.blocked": f"ignored wins over blocked: {EMAIL}",  # untouched
            "keep.password": "hunter2",  # ignored wins over the secret name
            "user.email": f"mail {EMAIL}",  # allowed: value scanned
            "user.token_hash": "abc",  # masked_keys glob
            "session": "s-123",  # masked_keys
            "db.password": "hunter2",  # allowed, named like a secret: masked
            "payment.amount": 12,  # not a string: never scanned
            "net.peer.name": "db",  # not allowed: dropped
        },
        resource={"service.name": "checkout", "host.name": "h1"},
    )
    batch = run(proc, Signal.TRACES, request)
    assert span_attributes(batch) == {
        "http.method": "GET",
        "keep.blocked": f"ignored wins over blocked: {EMAIL}",
        "keep.password": "hunter2",
        "user.email": "mail ***",
        "user.token_hash": "***",
        "session": "***",
        "db.password": "***",
        "payment.amount": "12",
    }
    # The allow list covers resources too: keep what you need there (or leave them out of scopes).
    assert plain(first_resource(batch).attributes) == {}
    assert dropped(registry, "blocked_key") == 1
    assert dropped(registry, "not_allowed") == 1 + 2
    assert (masked(registry, "key"), masked(registry, "password"), masked(registry, "email")) == (
        2,
        1,
        1,
    )
    assert batch.encoded is None


def test_masked_keys_replace_every_value_inside_keeping_arrays_and_maps() -> None:
    proc = processor(masked_keys=["http.request.header.*", "pin", "creds"])
    request = traces(
        {
            "http.request.header.authorization": ["Bearer abcdefgh123", "Basic Zm9vOmJhcg=="],
            "pin": 1234,
            "creds": {"user": "bob", "tries": 3, "nested": ["x", True]},
            "http.request.header.x-masked": "***",  # masked already: no change, no count
        }
    )
    batch = run(proc, Signal.TRACES, request)
    assert span_attributes(batch) == {
        "http.request.header.authorization": {"values": [{"stringValue": "***"}] * 2},
        "pin": "***",
        "creds": {
            "values": [
                {"key": "user", "value": {"stringValue": "***"}},
                {"key": "tries", "value": {"stringValue": "***"}},
                {
                    "key": "nested",
                    "value": {"arrayValue": {"values": [{"stringValue": "***"}] * 2}},
                },
            ]
        },
        "http.request.header.x-masked": "***",
    }


def test_nested_maps_and_arrays_are_scanned_and_their_keys_ruled() -> None:
    proc = processor(allowed_keys=["order"], blocked_keys=["internal"])
    request = traces(
        {
            "order": {
                "customer": {"email": EMAIL, "password": "hunter2", "internal": "x"},
                "cards": [CARD, "none", [f"deep {CARD}"]],
                "note": "not dropped although not in allowed_keys: nested keys are data",
            }
        }
    )
    batch = run(proc, Signal.TRACES, request)
    value = first_span(batch).attributes[0].value
    customer, cards, note = value.kvlist_value.values
    assert plain(customer.value.kvlist_value.values) == {"email": "***", "password": "***"}
    inner = cards.value.array_value.values
    assert [inner[0].string_value, inner[1].string_value] == ["***", "none"]
    assert inner[2].array_value.values[0].string_value == "deep ***"
    assert note.value.string_value.startswith("not dropped")


def test_spans_events_links_status_and_resources_are_all_scanned() -> None:
    registry = CollectorRegistry()
    proc = processor(registry)
    request = traces(
        {"user.email": EMAIL, "http.route": "/pay"},
        resource={"service.name": "checkout", "owner": "team@example.com"},
        event={"exception.message": f"card {CARD} declined"},
        link={"note": "Bearer abcdef1234567890"},
        status_message=f"declined for {EMAIL}",
    )
    batch = run(proc, Signal.TRACES, request)
    span = first_span(batch)
    assert plain(span.attributes) == {"user.email": "***", "http.route": "/pay"}
    assert plain(span.events[0].attributes) == {"exception.message": "card *** declined"}
    assert plain(span.links[0].attributes) == {"note": "Bearer ***"}
    assert span.status.message == "declined for ***"
    resource = first_resource(batch)
    assert plain(resource.attributes) == {"service.name": "checkout", "owner": "***"}
    assert masked(registry, "email") == 3
    assert masked(registry, "card") == 1 and masked(registry, "bearer") == 1


def test_scopes_limit_what_is_scanned() -> None:
    proc = processor(scopes=["event"])
    request = traces(
        {"user.email": EMAIL},
        resource={"owner": EMAIL},
        event={"m": EMAIL},
        link={"m": EMAIL},
        status_message=EMAIL,
    )
    batch = run(proc, Signal.TRACES, request)
    span = first_span(batch)
    assert plain(span.events[0].attributes) == {"m": "***"}
    assert plain(span.attributes) == {"user.email": EMAIL}
    assert plain(span.links[0].attributes) == {"m": EMAIL}
    assert span.status.message == EMAIL
    assert plain(first_resource(batch).attributes) == {"owner": EMAIL}


def test_log_bodies_strings_maps_and_arrays() -> None:
    proc = processor()
    text = logs(f"charged {CARD} for {EMAIL}", {"user.email": EMAIL})
    batch = run(proc, Signal.LOGS, text)
    record = first_record(batch)
    assert record.body.string_value == "charged *** for ***"
    assert plain(record.attributes) == {"user.email": "***"}

    structured = logs({"message": f"to {EMAIL}", "password": "x", "items": [CARD, 3]})
    batch = run(proc, Signal.LOGS, structured)
    body = first_record(batch).body
    assert plain(body.kvlist_value.values) == {
        "message": "to ***",
        "password": "***",
        "items": {"values": [{"stringValue": "***"}, {"intValue": "3"}]},
    }


def test_log_bodies_can_be_left_alone() -> None:
    proc = processor(log_bodies=False)
    batch = run(proc, Signal.LOGS, logs(f"to {EMAIL}", {"e": EMAIL}))
    record = first_record(batch)
    assert record.body.string_value == f"to {EMAIL}"
    assert plain(record.attributes) == {"e": "***"}


def test_metric_data_points_and_exemplars_of_every_kind() -> None:
    registry = CollectorRegistry()
    proc = processor(registry, blocked_keys=["user.id"])
    request = metrics({"customer": EMAIL, "user.id": "u1", "route": "/pay"}, {"card": CARD})
    batch = run(proc, Signal.METRICS, request)
    kinds = metrics_of(batch)
    for metric in kinds:
        kind = str(metric.WhichOneof("data"))
        point = getattr(metric, kind).data_points[0]
        assert plain(point.attributes) == {"customer": "***", "route": "/pay"}, kind
        if kind != "summary":
            assert plain(point.exemplars[0].filtered_attributes) == {"card": "***"}
    assert masked(registry, "email") == 5 and masked(registry, "card") == 4
    assert dropped(registry, "blocked_key") == 5


def test_nothing_to_mask_keeps_the_received_bytes() -> None:
    proc = processor(blocked_keys=["nope"])
    cases: list[tuple[Signal, ExportRequest]] = [
        (Signal.TRACES, traces({"http.route": "/pay", "n": 1}, event={"a": "b"})),
        (Signal.LOGS, logs({"message": "fine"}, {"thread": "worker-1"})),
        (Signal.METRICS, metrics({"route": "/pay"})),
    ]
    for signal, request in cases:
        batch = received(signal, request)
        encoded = batch.encoded
        assert proc.process(batch).encoded is encoded, signal


def test_changed_items_drop_the_bytes_and_the_new_encoding_is_what_was_kept() -> None:
    proc = processor()
    batch = run(proc, Signal.TRACES, traces({"user.email": EMAIL, "n": 1}))
    assert batch.encoded is None
    span = first_span(Batch(Signal.TRACES, None, 1, batch.serialized()))  # decoded from bytes
    assert plain(span.attributes) == {"user.email": "***", "n": "1"}
    assert span.span_id == b"\x02" * 8


def test_a_change_in_resources_only_is_spliced_into_the_received_bytes() -> None:
    proc = processor()
    request = traces({"http.route": "/pay"}, resource={"service.name": "a", "owner": EMAIL})
    batch = run(proc, Signal.TRACES, request)  # run() checks the bytes decode to the request
    assert batch.encoded is not None
    resource = first_resource(Batch(Signal.TRACES, None, 1, batch.encoded))
    assert plain(resource.attributes) == {"service.name": "a", "owner": "***"}


def test_a_batch_without_bytes_is_processed_too() -> None:
    proc = processor()
    batch = proc.process(Batch.from_request(Signal.LOGS, logs(EMAIL)))
    assert batch.encoded is None
    assert first_record(batch).body.string_value == "***"


def test_clean_resources_are_remembered_by_their_bytes() -> None:
    proc = processor()
    request = traces({"a": "b"}, resource={"service.name": "checkout", "v": "1.0.0"})
    run(proc, Signal.TRACES, request)
    assert len(proc._clean_resources) == 1
    run(proc, Signal.TRACES, traces({"a": "b"}, resource={"owner": EMAIL}))
    assert len(proc._clean_resources) == 1  # a resource that was masked is never remembered


def test_summary_attributes_count_per_span_and_record() -> None:
    proc = processor(summary=True, blocked_keys=["x"])
    request = traces({"user.email": EMAIL, "x": 1}, event={"m": f"{CARD} {EMAIL}"})
    attrs = span_attributes(run(proc, Signal.TRACES, request))
    assert attrs["redaction.masked.count"] == "3" and attrs["redaction.dropped.count"] == "1"

    batch = run(proc, Signal.LOGS, logs(f"to {EMAIL}"))
    record = first_record(batch)
    assert plain(record.attributes) == {"redaction.masked.count": "1"}

    clean = run(proc, Signal.TRACES, traces({"fine": "yes"}))
    assert "redaction.masked.count" not in span_attributes(clean)

    upstream = traces({"redaction.masked.count": 2, "e": EMAIL})  # an earlier gateway counted
    assert span_attributes(run(proc, Signal.TRACES, upstream)) == {
        "redaction.masked.count": "3",
        "e": "***",
    }


def test_counters_are_per_processor_on_the_injected_registry() -> None:
    registry = CollectorRegistry()
    one = processor(registry, "redaction")
    two = processor(registry, "redaction/strict", patterns=["email"])
    run(one, Signal.LOGS, logs(f"{EMAIL} {CARD}"))
    run(two, Signal.LOGS, logs(f"{EMAIL} {CARD}"))
    assert masked(registry, "email") == 1 and masked(registry, "card") == 1
    assert masked(registry, "email", "redaction/strict") == 1
    assert masked(registry, "card", "redaction/strict") == 0  # the series exist from the start
    assert dropped(registry, "not_allowed", "redaction/strict") == 0


def test_values_nested_deeper_than_ingest_allows_are_masked_whole() -> None:
    deep = AnyValue(string_value=EMAIL)
    for _ in range(70):
        wrapper = AnyValue()
        wrapper.array_value.values.add().CopyFrom(deep)
        deep = wrapper
    request = logs(None)
    request.resource_logs[0].scope_logs[0].log_records[0].body.CopyFrom(deep)
    registry = CollectorRegistry()
    batch = run(processor(registry), Signal.LOGS, request)
    value = first_record(batch).body
    while value.WhichOneof("value") == "array_value":
        value = value.array_value.values[0]
    assert value.string_value == "***"
    assert masked(registry, "nesting") == 1


def test_strings_only_other_types_are_left_as_they_are() -> None:
    proc = processor()
    request = traces({"n": 4111111111111111, "b": CARD.encode(), "f": 1.5, "t": True})
    batch = received(Signal.TRACES, request)
    encoded = batch.encoded
    assert proc.process(batch).encoded is encoded
    assert any_value(CARD.encode()).bytes_value == CARD.encode()
