"""Admission: the in-flight byte budget and load shedding by event-loop delay."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import CollectorRegistry

from gateway.errors import MemoryLimitError, OverloadedError
from gateway.receivers.admission import Admission
from gateway.selfmetrics import GatewayMetrics


def make(max_bytes: int = 100, max_delay: float = 0.0) -> tuple[Admission, CollectorRegistry]:
    registry = CollectorRegistry()
    admission = Admission(
        GatewayMetrics(registry), max_inflight_bytes=max_bytes, max_loop_delay=max_delay
    )
    return admission, registry


def test_requests_share_the_budget_and_give_it_back() -> None:
    admission, registry = make(100)
    first = admission.admit(60)
    second = admission.admit(40)
    with pytest.raises(MemoryLimitError) as info:
        admission.admit(1)
    assert info.value.http_status == 503 and info.value.retry_after == 1.0
    assert registry.get_sample_value("otelgate_receiver_inflight_bytes") == 100
    first.release()
    first.release()  # idempotent
    third = admission.admit(50)
    with pytest.raises(MemoryLimitError):
        third.grow(11)
    assert third.nbytes == 50  # a refused growth holds nothing more
    second.release()
    third.release()
    assert admission.in_flight == 0
    assert registry.get_sample_value("otelgate_receiver_inflight_limit_bytes") == 100


def test_a_lone_request_always_fits() -> None:
    """A budget below the largest allowed request still lets it through, one at a time."""
    admission, _ = make(100)
    ticket = admission.admit(70)
    ticket.grow(500)  # alone: admitted
    assert ticket.nbytes == 570
    with pytest.raises(MemoryLimitError):
        admission.admit(1)
    ticket.release()


async def test_a_late_event_loop_sheds_new_requests_and_recovers() -> None:
    admission, registry = make(max_delay=0.2)
    await admission.start()
    try:
        await asyncio.sleep(0.12)
        assert not admission.shedding
        time.sleep(0.5)  # something holds the loop
        await asyncio.sleep(0.01)  # the probe wakes up late and measures it
        assert admission.shedding
        with pytest.raises(OverloadedError, match="event loop"):
            admission.admit()
        delay = registry.get_sample_value("otelgate_event_loop_delay_seconds")
        assert delay is not None and delay >= 0.3
        for _ in range(50):  # the next on-time probe ends the shedding
            await asyncio.sleep(0.05)
            if not admission.shedding:
                break
        assert not admission.shedding
        admission.admit().release()
    finally:
        await admission.stop()


async def test_no_shedding_when_the_delay_limit_is_zero() -> None:
    admission, _ = make(max_delay=0.0)
    await admission.start()
    time.sleep(0.2)
    await asyncio.sleep(0.01)
    assert not admission.shedding
    await admission.stop()
