"""The exporter's calls against a scripted CloudWatch Logs (real botocore errors): groups and
streams created on demand, races, rejected events, refused data isolated, throttling resumed
without sending a call twice, and credential errors."""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

import pytest
from botocore.exceptions import (
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
)
from prometheus_client import CollectorRegistry

from exporters.base import Partial, Refused
from exporters.cloudwatch.exporter import CloudWatchExporter
from exporters.cloudwatch.sender import REJECTED_NEW, REJECTED_OLD
from exporters.delivery import Delivery
from exporters.retry import RetryPolicy
from gateway.errors import PermanentError, RetryableError, ThrottledError
from gateway.otlp.batch import Batch, Signal
from gateway.selfmetrics import GatewayMetrics
from tests.exporters.cloudwatch.helpers import (
    NOW_MS,
    ScriptedClient,
    batch,
    client_error,
    logs,
    make_exporter,
    metrics,
    record,
    stored_messages,
)
from tests.exporters.cloudwatch.metric_builders import counter, number
from tests.factories import traces_request

GROUP, STREAM = "/otelgate/logs", "checkout"
FAST = RetryPolicy(initial_interval=0.01, max_interval=0.02, max_elapsed_time=5)


def lines(n: int, prefix: str = "line") -> Batch:
    return batch(logs([record(f"{prefix} {i}", NOW_MS - n + i) for i in range(n)]))


async def started(client: ScriptedClient, **settings: Any) -> CloudWatchExporter:
    exporter = make_exporter(client, **settings)
    await exporter.start()
    return exporter


def ready(client: ScriptedClient) -> ScriptedClient:
    client.groups[GROUP] = None
    client.stored[(GROUP, STREAM)] = []
    return client


async def test_a_missing_group_and_stream_are_created_with_the_retention() -> None:
    client = ScriptedClient()
    exporter = await started(client, log_retention=14)
    assert await exporter.push(lines(3)) is None
    assert [op for op, _ in client.calls] == [
        "put_log_events", "create_log_stream", "create_log_group", "put_retention_policy",
        "create_log_stream", "put_log_events",
    ]  # fmt: skip
    assert client.groups == {GROUP: 14}
    bodies = [json.loads(m)["body"] for m in stored_messages(client)]
    assert bodies == ["line 0", "line 1", "line 2"]
    client.calls.clear()
    assert await exporter.push(lines(2)) is None
    assert [op for op, _ in client.calls] == ["put_log_events"]  # the happy path: one call


async def test_a_missing_stream_in_an_existing_group_leaves_the_group_alone() -> None:
    client = ScriptedClient()
    client.groups[GROUP] = 30
    exporter = await started(client, log_retention=1)
    assert await exporter.push(lines(1)) is None
    assert [op for op, _ in client.calls] == ["put_log_events", "create_log_stream",
                                              "put_log_events"]  # fmt: skip
    assert client.groups == {GROUP: 30}  # retention only on groups the exporter creates


async def test_another_process_creating_them_first_is_success() -> None:
    client = ready(ScriptedClient())  # created by another worker since our first call
    client.fail("put_log_events", client_error("ResourceNotFoundException"))
    client.fail("create_log_stream", client_error("ResourceNotFoundException"))
    exporter = await started(client, log_retention=7)
    assert await exporter.push(lines(2)) is None
    assert [op for op, _ in client.calls] == [
        "put_log_events", "create_log_stream", "create_log_group", "create_log_stream",
        "put_log_events",
    ]  # fmt: skip
    assert len(client.stored[(GROUP, STREAM)]) == 2 and client.groups[GROUP] is None


async def test_rejected_events_are_refused_with_exact_counts() -> None:
    client = ready(ScriptedClient())
    info = {"tooOldLogEventEndIndex": 2, "expiredLogEventEndIndex": 3,
            "tooNewLogEventStartIndex": 8}  # fmt: skip
    client.fail("put_log_events", {"rejectedLogEventsInfo": info})
    exporter = await started(client)
    refused = await exporter.push(lines(10))
    assert isinstance(refused, Refused) and refused.items == 5  # 0, 1, 2 and 8, 9
    assert refused.reason == f"{REJECTED_OLD}; {REJECTED_NEW}"
    assert len(client.stored[(GROUP, STREAM)]) == 5


async def test_refused_data_costs_only_the_refused_events() -> None:
    client = ready(ScriptedClient())
    client.bad_marker = "BAD"
    records = [record(f"ok {i}", NOW_MS) for i in range(64)]
    records[37] = record("BAD one", NOW_MS)
    exporter = await started(client, raw_log=True)
    refused = await exporter.push(batch(logs(records)))
    assert isinstance(refused, Refused) and refused.items == 1
    assert "Log event too large or malformed" in refused.reason
    assert sorted(stored_messages(client)) == sorted(f"ok {i}" for i in range(64) if i != 37)
    assert len(client.ops("put_log_events")) <= 2 * 6 + 1  # halving: about 2 log2(n) calls


async def test_a_refusal_naming_the_stream_refuses_the_call_at_once() -> None:
    client = ready(ScriptedClient())
    message = "1 validation error detected: Value at 'logStreamName' failed"
    client.fail("put_log_events", client_error("InvalidParameterException", message))
    exporter = await started(client)
    refused = await exporter.push(lines(50))
    assert isinstance(refused, Refused) and refused.items == 50
    assert len(client.ops("put_log_events")) == 1


async def test_throttling_half_way_resumes_without_sending_a_call_twice() -> None:
    client = ready(ScriptedClient())
    client.fail("put_log_events", None, client_error("ThrottlingException", "Rate exceeded"))
    exporter = await started(client, raw_log=True)
    whole = lines(25_000)  # three calls: 10,000 + 10,000 + 5,000
    outcome = await exporter.push(whole)
    assert isinstance(outcome, Partial)
    assert isinstance(outcome.error, ThrottledError) and "Rate exceeded" in str(outcome.error)
    assert outcome.remainder.items == 15_000 and outcome.refused == 0
    assert await exporter.push(outcome.remainder) is None
    sent = [len(args["logEvents"]) for args in client.ops("put_log_events")]
    assert sent == [10_000, 10_000, 10_000, 5_000]  # the throttled one again, then the last
    assert sorted(stored_messages(client)) == sorted(f"line {i}" for i in range(25_000))


async def test_through_the_queue_delivery_every_item_is_counted_once() -> None:
    client = ready(ScriptedClient())
    client.fail("put_log_events", None, client_error("ServiceUnavailableException", status=503),
                client_error("InternalFailure", status=500))  # fmt: skip
    metrics = GatewayMetrics(CollectorRegistry())
    exporter = await started(client, raw_log=True)
    delivery = Delivery("cloudwatch", exporter, metrics, FAST)
    await delivery.deliver(lines(25_000))
    assert metrics.exporter_sent.labels("cloudwatch", "logs")._value.get() == 25_000
    assert metrics.exporter_failed.labels("cloudwatch", "logs")._value.get() == 0
    assert metrics.exporter_retries.labels("cloudwatch", "logs")._value.get() == 2
    assert len(stored_messages(client)) == len(set(stored_messages(client))) == 25_000


async def test_a_plan_is_kept_while_its_batch_is_retried_and_freed_with_it() -> None:
    """However many batches the queue's consumers retry at once (no cap to evict a live
    plan), and nothing kept once the queue has let a batch go."""
    client = ready(ScriptedClient())
    exporter = await started(client)
    batches = [lines(2, f"b{i}") for i in range(80)]
    client.fail("put_log_events", *[client_error("ThrottlingException")] * 80)
    for each in batches:
        with pytest.raises(ThrottledError):
            await exporter.push(each)
    assert len(exporter._pending) == 80
    assert [await exporter.push(each) for each in batches[:40]] == [None] * 40
    del batches[:40]
    gc.collect()
    assert len(exporter._pending) == 40  # delivered: freed; still retried: kept
    del batches, each
    gc.collect()
    assert len(exporter._pending) == 0
    assert len(stored_messages(client)) == 80


async def test_throttling_on_the_first_call_raises_and_the_retry_resumes_the_plan() -> None:
    client = ready(ScriptedClient())
    client.fail("put_log_events", client_error("ThrottlingException"))
    exporter = await started(client)
    pushed = lines(4)
    with pytest.raises(ThrottledError):
        await exporter.push(pushed)
    assert await exporter.push(pushed) is None
    assert len(client.stored[(GROUP, STREAM)]) == 4


@pytest.mark.parametrize(
    "error",
    [EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), TimeoutError("read"),
     client_error("InternalFailure", status=500),
     client_error("ExpiredTokenException", "The security token has expired"),
     CredentialRetrievalError(provider="container-role", error_msg="Read timeout")],
)  # fmt: skip
async def test_connection_errors_and_5xx_are_retryable(error: Exception) -> None:
    client = ready(ScriptedClient())
    client.fail("put_log_events", error)
    exporter = await started(client)
    with pytest.raises(RetryableError):
        await exporter.push(lines(1))


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (client_error("UnrecognizedClientException", "The security token is invalid"),
         "AWS refused the credentials"),
        (client_error("AccessDeniedException", "not authorized", status=400),
         "logs:PutLogEvents"),
        (NoCredentialsError(), "no usable AWS credentials"),
    ],
)  # fmt: skip
async def test_credential_and_access_errors_are_permanent(error: Exception, words: str) -> None:
    client = ready(ScriptedClient())
    client.fail("put_log_events", error)
    exporter = await started(client)
    with pytest.raises(PermanentError) as caught:
        await exporter.push(lines(3))
    assert words in str(caught.value) and not isinstance(caught.value, RetryableError)


async def test_a_stream_cloudwatch_will_not_create_refuses_its_calls_once_each() -> None:
    """A name refused on creation is the same for every event: no halving down to one."""
    client = ScriptedClient()
    client.fail("create_log_group", client_error("InvalidParameterException", "bad name"))
    exporter = await started(client, raw_log=True)
    outcome = await exporter.push(lines(2_000))
    assert isinstance(outcome, Refused) and outcome.items == 2_000
    assert "cannot create" in outcome.reason and "bad name" in outcome.reason
    assert [op for op, _ in client.calls].count("put_log_events") == 1


async def test_a_final_error_after_some_calls_refuses_exactly_the_rest() -> None:
    client = ready(ScriptedClient())
    client.fail("put_log_events", None, client_error("AccessDeniedException", status=400))
    exporter = await started(client, raw_log=True)
    outcome = await exporter.push(lines(25_000))
    assert isinstance(outcome, Refused) and outcome.items == 15_000
    assert "access denied" in outcome.reason


async def test_a_transient_retention_failure_is_tried_again_before_the_next_call() -> None:
    client = ScriptedClient()
    client.fail("put_retention_policy", client_error("ThrottlingException"))
    exporter = await started(client, log_retention=30)
    with pytest.raises(ThrottledError):
        await exporter.push(lines(1))
    client.calls.clear()
    assert await exporter.push(lines(1, "again")) is None
    assert client.groups[GROUP] == 30
    assert [op for op, _ in client.calls] == [
        "put_retention_policy",
        "put_log_events",
        "create_log_stream",
        "put_log_events",
    ]


async def test_traces_are_not_taken() -> None:
    exporter = await started(ScriptedClient())
    with pytest.raises(PermanentError, match="not traces"):
        await exporter.push(Batch.from_request(Signal.TRACES, traces_request()))


async def test_big_metrics_batches_are_planned_off_the_loop_one_at_a_time() -> None:
    client = ScriptedClient()
    exporter = await started(client)
    old = NOW_MS * 1_000_000 - 3600 * 10**9

    def points(value: int, second: int) -> Batch:
        ns = NOW_MS * 1_000_000 + second * 10**9
        return batch(metrics([counter("c", *(number(value * i, ns, old, k=str(i))
                                            for i in range(1500)))]))  # fmt: skip

    assert await exporter.push(points(1, 0)) is None  # 1,500 baselines
    # two batches planned concurrently: each point's delta is computed once, in order
    outcomes = await asyncio.gather(exporter.push(points(3, 1)), exporter.push(points(4, 2)))
    assert outcomes == [None, None]
    docs = [json.loads(m) for m in stored_messages(client)]
    assert len(docs) == 3000
    assert sorted(d["c"] for d in docs if d["k"] == "10") == [10, 20]
