"""Load on the store exporter: with a deliberately tiny store queue, a burst of OTLP/HTTP log
requests must all be answered 200 while the store sheds what it cannot write, every shed
item is counted, and what the gateway accepted is exactly what the store wrote, dropped or
failed once its queue is empty. The store still answers ``GET /logs`` afterwards."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateway.otlp.batch import Signal
from tests.support.gateway_process import GatewayProcess
from tests.support.otlp_samples import sample_request

pytestmark = pytest.mark.e2e

CLIENTS = 6
REQUESTS = 300  # in all, shared by the clients
RECORDS = 200  # per request
BURST_SECONDS = 20.0  # the burst gives up (and the test fails) past this
DRAIN_SECONDS = 10.0
SLOWEST_ANSWER = 5.0  # seconds; a few ms here, the store is off the receive path


def _config(tmp: str) -> dict[str, Any]:
    """Traces and logs into the store only, through a queue that holds one batch."""
    return {
        "exporters": {"store": {"sending_queue": {"queue_size": 2, "max_bytes": 200_000}}},
        "service": {
            "pipelines": {
                signal: {"receivers": ["otlp"], "exporters": ["store"]}
                for signal in ("traces", "logs")
            },
            "shutdown_timeout": "5s",
        },
        "store": {"path": f"{tmp}/store.db"},
    }


def _burst(url: str, bodies: list[bytes]) -> tuple[dict[int, int], list[str], float]:
    """Send every body once from :data:`CLIENTS` threads; the answers' status codes, the
    transport errors, and the slowest answer in seconds."""
    statuses: dict[int, int] = {}
    errors: list[str] = []
    slowest = [0.0]
    lock = threading.Lock()
    deadline = time.monotonic() + BURST_SECONDS
    headers = {"Content-Type": "application/x-protobuf"}

    def client(mine: list[bytes]) -> None:
        with httpx.Client(timeout=10) as http:
            for body in mine:
                if time.monotonic() > deadline:
                    with lock:
                        errors.append("burst deadline passed")
                    return
                started = time.monotonic()
                try:
                    status = http.post(url, content=body, headers=headers).status_code
                except httpx.HTTPError as exc:
                    with lock:
                        errors.append(repr(exc))
                    continue
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1
                    slowest[0] = max(slowest[0], time.monotonic() - started)

    threads = [
        threading.Thread(target=client, args=(bodies[i::CLIENTS],), daemon=True)
        for i in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BURST_SECONDS + 15)
    return statuses, errors, slowest[0]


def _store_counts(gateway: GatewayProcess) -> dict[str, float]:
    """The gateway's logs accepted, and the store exporter's logs sent, dropped and failed,
    and its queue's size."""
    store = {"exporter": "store", "signal": "logs"}
    return {
        "accepted": gateway.metric(
            "otelgate_receiver_accepted_items_total", signal="logs", transport="http"
        ),
        "sent": gateway.metric("otelgate_exporter_sent_items_total", **store),
        "dropped": gateway.metric("otelgate_exporter_dropped_items_total", **store),
        "failed": gateway.metric("otelgate_exporter_failed_items_total", **store),
        "queued": gateway.metric("otelgate_exporter_queue_size", exporter="store"),
    }


def _settled(gateway: GatewayProcess) -> dict[str, float]:
    """The counts once the store's queue is empty and they add up (or at the deadline)."""
    deadline = time.monotonic() + DRAIN_SECONDS
    counts = _store_counts(gateway)
    while time.monotonic() < deadline:
        total = counts["sent"] + counts["dropped"] + counts["failed"]
        if counts["queued"] == 0 and total == counts["accepted"]:
            break
        time.sleep(0.1)
        counts = _store_counts(gateway)
    return counts


def test_store_sheds_under_load_and_ingest_keeps_flowing(
    start_gateway: Callable[..., GatewayProcess], tmp_path: Any
) -> None:
    gateway = start_gateway(_config(str(tmp_path)))
    bodies = [
        sample_request(Signal.LOGS, RECORDS, service=f"load-{i % 7}").SerializeToString()
        for i in range(REQUESTS)
    ]
    began = time.monotonic()
    statuses, errors, slowest = _burst(f"{gateway.http_endpoint}/v1/logs", bodies)
    took = time.monotonic() - began
    counts = _settled(gateway)
    print(
        f"\nstore load: {REQUESTS} requests x {RECORDS} records in {took:.2f} s "
        f"({REQUESTS * RECORDS / took:,.0f} records/s, slowest answer {slowest:.2f} s), "
        f"answers {statuses}; store sent {counts['sent']:.0f}, dropped {counts['dropped']:.0f}, "
        f"failed {counts['failed']:.0f} of {counts['accepted']:.0f} accepted"
    )
    assert not errors, errors[:5]
    assert statuses == {200: REQUESTS}  # never refused, never slowed into timeouts
    assert slowest < SLOWEST_ANSWER
    assert counts["accepted"] == REQUESTS * RECORDS
    assert counts["dropped"] > 0  # the store had to shed, and said so
    assert counts["sent"] > 0  # ... while still writing what it could
    assert counts["queued"] == 0
    assert counts["sent"] + counts["dropped"] + counts["failed"] == counts["accepted"]
    time.sleep(0.3)  # nothing is counted twice, or late
    assert _store_counts(gateway) == counts
    answer = httpx.get(f"{gateway.admin_url}/logs", params={"limit": 1}, timeout=5)
    assert answer.status_code == 200, answer.text
    assert answer.json()["logs"], answer.text
