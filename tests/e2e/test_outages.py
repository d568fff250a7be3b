"""Downstream outages, throttling, permanent errors and full queues, with the real process.

Counts are printed (run pytest with -s to see them): what was sent, accepted, delivered.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.e2e.conftest import forward_config
from tests.factories import traces_request
from tests.support.otlp_sink import OtlpSink


def post_traces(gateway, spans: int) -> tuple[httpx.Response, set[bytes]]:
    request = traces_request(spans)
    ids = {s.span_id for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans}
    response = httpx.post(
        f"{gateway.http_endpoint}/v1/traces",
        content=request.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
        timeout=10,
    )
    return response, ids


def delivered_span_ids(sink: OtlpSink) -> list[bytes]:
    return [s.span_id for s in sink.spans()]


@pytest.mark.parametrize("downstream", ["http/protobuf", "grpc"])
def test_outage_loses_nothing_and_duplicates_nothing(start_gateway, downstream):
    sink = OtlpSink().start()
    try:
        gateway = start_gateway(forward_config(sink, downstream))
        sent: set[bytes] = set()
        for _ in range(5):
            response, ids = post_traces(gateway, 20)
            assert response.status_code == 200
            sent |= ids
        assert sink.wait_for(lambda s: len(s.spans()) == len(sent), 10)
        ports = (sink.grpc_port, sink.http_port)
        sink.stop()

        outage_started = time.monotonic()
        for _ in range(10):  # accepted while the backend is down
            response, ids = post_traces(gateway, 20)
            assert response.status_code == 200
            sent |= ids
        time.sleep(max(0.0, 4.0 - (time.monotonic() - outage_started)))
        assert gateway.metric("otelgate_exporter_retries_total", exporter="otlp/sink") > 0

        sink = OtlpSink(*ports).start()
        assert sink.wait_for(lambda s: len(s.spans()) >= 200, 20), gateway.logs()
        time.sleep(1.0)  # anything sent twice would show up now
        delivered = delivered_span_ids(sink)
        accepted = gateway.metric("otelgate_receiver_accepted_items_total", signal="traces")
        duplicates = len(delivered) - len(set(delivered))
        print(
            f"\n[outage {downstream}] sent={len(sent)} accepted={accepted:.0f} "
            f"delivered_after_outage={len(delivered)} duplicates={duplicates}"
        )
        assert len(delivered) == len(set(delivered)) == 200  # the 10 outage batches, once each
        assert gateway.metric("otelgate_exporter_sent_items_total", signal="traces") == 300
        assert gateway.metric("otelgate_exporter_failed_items_total", signal="traces") == 0
        assert gateway.metric("otelgate_exporter_dropped_items_total", signal="traces") == 0
    finally:
        sink.stop()


def test_retry_after_is_honoured(sink, start_gateway):
    gateway = start_gateway(forward_config(sink))
    sink.fail_next(1, http_status=429, retry_after="2")
    response, ids = post_traces(gateway, 3)
    assert response.status_code == 200
    assert sink.wait_for(lambda s: len(s.spans()) == 3, 10)
    [refused] = sink.refused
    [delivered] = sink.received
    waited = delivered.at - refused.at
    print(f"\n[429 Retry-After: 2] retried after {waited:.2f}s")
    assert waited >= 2.0
    assert set(delivered_span_ids(sink)) == ids


def test_downstream_400_is_not_retried_and_counted_failed(sink, start_gateway):
    """A 400 blames the data: the batch of 4 is split down to single spans (1 + 2 + 4
    requests), each refused again, and none is retried."""
    gateway = start_gateway(forward_config(sink))
    sink.fail_next(7, http_status=400)
    response, _ = post_traces(gateway, 4)
    assert response.status_code == 200
    deadline = time.monotonic() + 10
    while gateway.metric("otelgate_exporter_failed_items_total", signal="traces") < 4:
        assert time.monotonic() < deadline, gateway.logs()
        time.sleep(0.1)
    time.sleep(1.0)  # a retry (initial interval 200ms) would have happened by now
    assert len(sink.refused) == 7
    assert sink.received == []
    assert "4 of 4 traces refused: HTTP 400" in gateway.logs()


def test_full_queue_refuses_upstream_and_loses_nothing_accepted(start_gateway):
    sink = OtlpSink()  # not started: the backend is down
    sink.start()
    ports = (sink.grpc_port, sink.http_port)
    sink.stop()
    config = forward_config(sink, sending_queue={"queue_size": 100, "num_consumers": 1})
    gateway = start_gateway(config)
    accepted: set[bytes] = set()
    refused = 0
    retry_after = None
    for _ in range(20):
        response, ids = post_traces(gateway, 10)
        if response.status_code == 200:
            accepted |= ids
        else:
            assert response.status_code == 429
            retry_after = response.headers.get("retry-after")
            refused += 1
    ready = httpx.get(f"{gateway.admin_url}/health/ready", timeout=5)
    assert ready.status_code == 503 and "queue full" in ready.text
    assert len(accepted) == 100 and refused == 10
    assert retry_after is not None and int(retry_after) >= 1
    assert (
        gateway.metric(
            "otelgate_receiver_refused_items_total", signal="traces", reason="backpressure"
        )
        == 100
    )

    sink = OtlpSink(*ports).start()
    try:
        assert sink.wait_for(lambda s: len(s.spans()) == 100, 20), gateway.logs()
        time.sleep(0.5)
        delivered = delivered_span_ids(sink)
        print(f"\n[full queue] accepted={len(accepted)} refused_requests={refused} "
              f"delivered={len(delivered)}")  # fmt: skip
        assert sorted(delivered) == sorted(accepted)
        assert httpx.get(f"{gateway.admin_url}/health/ready", timeout=5).status_code == 200
    finally:
        sink.stop()


def test_sigterm_drains_the_queue_and_exits_zero(start_gateway):
    sink = OtlpSink().start()
    sink.delay = 0.3  # slow backend: the queue still holds items when SIGTERM arrives
    try:
        config = forward_config(sink, sending_queue={"num_consumers": 1})
        gateway = start_gateway(config)
        sent: set[bytes] = set()
        for _ in range(5):
            response, ids = post_traces(gateway, 4)
            assert response.status_code == 200
            sent |= ids
        assert gateway.stop() == 0
        assert set(delivered_span_ids(sink)) == sent
        assert "dropped" not in gateway.logs()
    finally:
        sink.stop()
