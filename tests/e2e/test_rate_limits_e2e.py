"""Per-token rate limits on the real gateway under a bounded overload from two tokens: the
limited one is refused with 429 and a ``Retry-After`` that, honoured, gets it accepted; the
other is never refused; everything accepted reaches the backend."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from gateway.otlp.batch import Signal
from tests.e2e.conftest import forward_config
from tests.support.gateway_process import GatewayProcess
from tests.support.otlp_samples import sample_request
from tests.support.otlp_sink import OtlpSink

LIMITED = "limited-token-e2e-0123456789abcdef"
FREE = "free-token-e2e-0123456789abcdef"
SCRAPER = "scraper-token-e2e-0123456789abcdef"
RATE = 400  # spans per second for the limited token
BATCH = 100  # spans per request
SECONDS = 4.0


@dataclass
class Tally:
    accepted: int = 0  # spans
    refused: int = 0  # requests
    retry_after: list[int] = field(default_factory=list)
    accepted_after_waiting: int = 0  # requests accepted right after honouring Retry-After
    refused_after_waiting: int = 0
    other: list[int] = field(default_factory=list)


def send(url: str, token: str, pause: float, tally: Tally, deadline: float) -> None:
    body = sample_request(Signal.TRACES, BATCH).SerializeToString()
    headers = {"content-type": "application/x-protobuf", "authorization": f"Bearer {token}"}
    waited = False
    with httpx.Client(timeout=10) as client:
        while time.monotonic() < deadline:
            response = client.post(url, content=body, headers=headers)
            if response.status_code == 200:
                tally.accepted += BATCH
                tally.accepted_after_waiting += waited
            elif response.status_code == 429:
                tally.refused += 1
                tally.refused_after_waiting += waited
                delay = int(response.headers["retry-after"])
                tally.retry_after.append(delay)
                time.sleep(delay)
                waited = True
                continue
            else:
                tally.other.append(response.status_code)
            waited = False
            time.sleep(pause)


def test_one_token_is_limited_the_other_is_not(
    start_gateway: Callable[..., GatewayProcess], sink: OtlpSink
):
    config = forward_config(sink)
    config["auth"] = {
        "tokens": [
            {"name": "limited", "token": LIMITED, "scopes": ["ingest"],
             "limits": {"items_per_second": RATE, "burst": 1}},
            {"name": "free", "token": FREE, "scopes": ["ingest"]},
            {"name": "scraper", "token": SCRAPER, "scopes": ["read"]},
        ]
    }  # fmt: skip
    gateway = start_gateway(config)
    gateway.admin_headers = {"authorization": f"Bearer {SCRAPER}"}
    url = f"{gateway.http_endpoint}/v1/traces"
    limited, free = Tally(), Tally()
    start = time.monotonic()
    deadline = start + SECONDS
    threads = [
        threading.Thread(target=send, args=(url, LIMITED, 0.0, limited, deadline)),
        threading.Thread(target=send, args=(url, FREE, 0.05, free, deadline)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SECONDS + 30)
    elapsed = time.monotonic() - start
    print(
        f"\nlimited: {limited.accepted} spans accepted in {elapsed:.1f}s "
        f"({limited.accepted / elapsed:.0f}/s, limit {RATE}/s + burst {RATE}), "
        f"{limited.refused} refusals, Retry-After {sorted(set(limited.retry_after))}, "
        f"{limited.accepted_after_waiting} accepted / {limited.refused_after_waiting} refused "
        f"right after waiting; free: {free.accepted} spans, {free.refused} refusals"
    )
    assert limited.other == [] and free.other == []
    assert free.refused == 0 and free.accepted > 0
    assert limited.refused > 0
    assert limited.refused_after_waiting == 0 and limited.accepted_after_waiting > 0
    # The bucket starts full (one second's worth), then refills at RATE.
    assert limited.accepted <= RATE * (elapsed + 1) + BATCH
    assert limited.accepted >= RATE * (SECONDS - 2)
    total = limited.accepted + free.accepted
    assert sink.wait_for(lambda s: len(s.spans()) >= total, timeout=20)
    assert len(sink.spans()) == total
    assert gateway.metric(
        "otelgate_receiver_accepted_items_total", signal="traces", transport="http"
    ) == total  # fmt: skip
    # Each refusal is counted once: as a request when refused before its body was read (a
    # request like the last one would not fit), as its items when refused after decoding.
    http = {"signal": "traces", "transport": "http", "reason": "rate_limited"}
    before_body = gateway.metric("otelgate_receiver_refused_requests_total", **http)
    after_decoding = gateway.metric("otelgate_receiver_refused_items_total", **http)
    assert before_body + after_decoding / BATCH == limited.refused
    assert gateway.metric(
        "otelgate_auth_requests_total", name="limited", transport="http", outcome="rate_limited"
    ) == limited.refused  # fmt: skip
    assert gateway.metric(
        "otelgate_auth_items_total", name="limited", signal="traces", outcome="rate_limited"
    ) == after_decoding  # fmt: skip
