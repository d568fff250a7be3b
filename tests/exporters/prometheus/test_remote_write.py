"""Remote write 1.0: the wire format, error classification and delta handling across retries."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable

import cramjam
import httpx
import pytest
from prometheus_client import CollectorRegistry

from exporters.prometheus import remote_write_pb as pb
from exporters.prometheus.remote_write import RemoteWriteExporter
from gateway.errors import PermanentError, RetryableError, ThrottledError
from gateway.otlp.batch import Batch, Signal
from tests.exporters.prometheus.builders import (
    DELTA,
    SEC,
    T0,
    gauge_metric,
    histogram_metric,
    request_of,
    sum_metric,
    summary_metric,
)
from tests.support.otlp_samples import sample_request

URL = "http://receiver.test/api/v1/write"


class Receiver:
    """An httpx transport that records write requests and answers as told."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.answers: list[Callable[[], httpx.Response]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.answers:
            return self.answers.pop(0)()
        return httpx.Response(204)

    def decoded(self, index: int = -1):
        body = self.requests[index].content
        return pb.WriteRequest.FromString(bytes(cramjam.snappy.decompress_raw(body)))

    def series(self, index: int = -1) -> dict[str, list[tuple[dict[str, str], float, int]]]:
        found: dict[str, list[tuple[dict[str, str], float, int]]] = {}
        for ts in self.decoded(index).timeseries:
            labels = {label.name: label.value for label in ts.labels}
            [sample] = ts.samples
            found.setdefault(labels.pop("__name__"), []).append(
                (labels, sample.value, sample.timestamp)
            )
        return found


@pytest.fixture
async def setup():
    receiver = Receiver()
    exporter = RemoteWriteExporter(
        URL, registry=CollectorRegistry(), transport=httpx.MockTransport(receiver)
    )
    await exporter.start()
    yield exporter, receiver
    await exporter.shutdown()


def batch(*metrics) -> Batch:
    return Batch.from_request(Signal.METRICS, request_of(*metrics))


async def test_headers_and_snappy_protobuf_body(setup):
    exporter, receiver = setup
    await exporter.push(
        batch(
            sum_metric("app.requests", [({"http.route": "/a"}, 3.0)]),
            gauge_metric("mem", 512, unit="By"),
            histogram_metric("lat", [0.5], [1, 2], 2.5),
        )
    )
    [request] = receiver.requests
    assert request.method == "POST" and str(request.url) == URL
    assert request.headers["content-encoding"] == "snappy"
    assert request.headers["content-type"] == "application/x-protobuf"
    assert request.headers["x-prometheus-remote-write-version"] == "0.1.0"
    assert request.headers["user-agent"].startswith("otelgate/")
    write = receiver.decoded()
    for ts in write.timeseries:
        names = [label.name for label in ts.labels]
        assert names[0] == "__name__" and names == sorted(names) and len(set(names)) == len(names)
        assert all(label.value for label in ts.labels)
    series = receiver.series()
    [(labels, value, stamp)] = series["app_requests_total"]
    assert value == 3.0 and stamp == (T0 + SEC) // 1_000_000
    assert labels == {"http_route": "/a", "job": "shop/checkout", "instance": "pod-1",
                      "otel_scope_name": "my.lib", "otel_scope_version": "1.2"}  # fmt: skip
    assert series["mem_bytes"][0][1] == 512
    buckets = {labels["le"]: v for labels, v, _ in series["lat_seconds_bucket"]}
    assert buckets == {"0.5": 1, "+Inf": 3}
    assert series["lat_seconds_count"][0][1] == 3 and series["lat_seconds_sum"][0][1] == 2.5
    assert series["target_info"][0][0]["deployment_environment"] == "test"
    kinds = {m.metric_family_name: m.type for m in write.metadata}
    assert kinds["app_requests_total"] == pb.METRIC_TYPES["counter"]
    assert kinds["lat_seconds"] == pb.METRIC_TYPES["histogram"]


@pytest.mark.parametrize(
    ("status", "headers", "text", "error", "retry_after"),
    [
        (500, {}, "write failed", RetryableError, None),
        (502, {}, "bad gateway", RetryableError, None),
        (503, {"Retry-After": "3"}, "busy", ThrottledError, 3.0),
        (429, {"Retry-After": "7"}, "slow down", ThrottledError, 7.0),
        (404, {}, "not found", PermanentError, None),
        # the data: the only series is refused, the batch's one point counted refused
        (400, {}, "out of order sample", None, None),
        (500, {}, 'label name "le" is not unique', None, None),
    ],
)
async def test_status_classification(setup, status, headers, text, error, retry_after):
    exporter, receiver = setup
    receiver.answers += [lambda: httpx.Response(status, headers=headers, text=text)] * 3
    if error is None:  # the request, then its two series (the gauge, target_info) alone
        refused = await exporter.push(batch(gauge_metric("g", 1)))
        assert refused is not None and refused.items == 1
        assert refused.reason == f"HTTP {status}: {text}"
        assert len(receiver.requests) == 3
        return
    with pytest.raises(error) as caught:
        await exporter.push(batch(gauge_metric("g", 1)))
    assert type(caught.value) is error
    assert f"HTTP {status}: {text}" in str(caught.value)
    if retry_after is not None:
        assert caught.value.retry_after == retry_after


async def test_connection_errors_are_retryable():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    exporter = RemoteWriteExporter(
        URL, registry=CollectorRegistry(), transport=httpx.MockTransport(refuse)
    )
    await exporter.start()
    try:
        with pytest.raises(RetryableError):
            await exporter.push(batch(gauge_metric("g", 1)))
    finally:
        await exporter.shutdown()


async def test_a_retried_delta_batch_is_not_counted_twice(setup):
    exporter, receiver = setup
    first = batch(sum_metric("jobs", [({}, 2.0)], temporality=DELTA, t=T0 + SEC))
    await exporter.push(first)
    second = batch(sum_metric("jobs", [({}, 3.0)], temporality=DELTA, t=T0 + 2 * SEC))
    receiver.answers.append(lambda: httpx.Response(503))
    with pytest.raises(ThrottledError):
        await exporter.push(second)
    await exporter.push(second)  # the queue's retry
    assert receiver.requests[1].content == receiver.requests[2].content
    assert [v for _, v, _ in receiver.series()["jobs_total"]] == [5.0]
    third = batch(sum_metric("jobs", [({}, 1.0)], temporality=DELTA, t=T0 + 3 * SEC))
    await exporter.push(third)
    assert [v for _, v, _ in receiver.series()["jobs_total"]] == [6.0]


async def test_out_of_order_points_are_dropped_before_sending():
    receiver, registry = Receiver(), CollectorRegistry()
    exporter = RemoteWriteExporter(
        URL, name="rw", registry=registry, transport=httpx.MockTransport(receiver)
    )
    await exporter.start()
    try:
        await exporter.push(batch(gauge_metric("g", 1, t=T0 + 2 * SEC)))
        await exporter.push(batch(gauge_metric("g", 2, t=T0 + SEC)))  # older: nothing to send
    finally:
        await exporter.shutdown()
    assert len(receiver.requests) == 1
    dropped = registry.get_sample_value(
        "otelgate_prometheus_dropped_points_total", {"exporter": "rw", "reason": "out_of_order"}
    )
    assert dropped == 1


async def test_stale_marker_for_no_recorded_value(setup):
    exporter, receiver = setup
    metric = gauge_metric("g", 0)
    metric.gauge.data_points[0].flags = 1  # DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
    await exporter.push(batch(metric))
    [(_, value, _)] = receiver.series()["g"]
    assert math.isnan(value)
    assert struct.pack("<d", value) == struct.pack("<Q", 0x7FF0000000000002)


async def test_other_signals_are_refused_permanently(setup):
    exporter, receiver = setup
    with pytest.raises(PermanentError):
        await exporter.push(Batch.from_request(Signal.LOGS, sample_request(Signal.LOGS)))
    assert receiver.requests == []


def colliding_batch() -> Batch:
    request = request_of(
        histogram_metric("lat", [0.5], [1, 2], 2.5, labels={"le": "x"}),
        summary_metric("rpc", {0.5: 1.0}, labels={"quantile": "q"}),
        sum_metric("hits", [({}, 4.0)]),
        gauge_metric("mem", 3),
        scope_attributes={"lib.mascot": "gopher"},
    )
    return Batch.from_request(Signal.METRICS, request)


async def test_le_quantile_and_scope_attributes_make_valid_series(setup):
    exporter, receiver = setup
    await exporter.push(colliding_batch())
    for ts in receiver.decoded().timeseries:
        names = [label.name for label in ts.labels]
        assert names == sorted(set(names)), names  # sorted, no duplicates ("le" not unique)
    series = receiver.series()
    assert {labels["le"] for labels, _, _ in series["lat_seconds_bucket"]} == {"0.5", "+Inf"}
    assert all(labels["exported_le"] == "x" for labels, _, _ in series["lat_seconds_bucket"])
    assert series["lat_seconds_count"][0][0]["exported_le"] == "x"
    [(quantile, _, _)] = series["rpc_seconds"]
    assert (quantile["quantile"], quantile["exported_quantile"]) == ("0.5", "q")
    for name, found in series.items():
        if name != "target_info":
            assert all(labels["otel_scope_lib_mascot"] == "gopher" for labels, _, _ in found)


async def test_no_created_series_by_default(setup):
    exporter, receiver = setup
    await exporter.push(colliding_batch())
    assert not [name for name in receiver.series() if name.endswith("_created")]


async def test_created_series_when_configured():
    receiver = Receiver()
    exporter = RemoteWriteExporter(
        URL, registry=CollectorRegistry(), transport=httpx.MockTransport(receiver),
        created_series=True,
    )  # fmt: skip
    await exporter.start()
    try:
        await exporter.push(colliding_batch())
    finally:
        await exporter.shutdown()
    series = receiver.series()
    created = {name: found for name, found in series.items() if name.endswith("_created")}
    same_labels_as = {
        "hits_created": "hits_total",
        "lat_seconds_created": "lat_seconds_count",
        "rpc_seconds_created": "rpc_seconds_count",
    }  # a gauge (mem) has none
    assert sorted(created) == sorted(same_labels_as)
    for name, [(labels, value, stamp)] in created.items():
        assert value == T0 / 1e9 and stamp == (T0 + SEC) // 1_000_000, name  # seconds, like OM
        assert labels == series[same_labels_as[name]][0][0]
