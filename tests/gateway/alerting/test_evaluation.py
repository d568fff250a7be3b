"""Per-service conditions over hand-built service reports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from gateway.alerting.evaluation import Observations, Sample, evaluate
from gateway.health.services import ServiceReport, ServiceStatus
from tests.gateway.alerting.evaluation_inputs import labelled, rule, service

# -- per-service conditions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("report", "fires"),
    [
        (service(requests=100, errors=6), True),  # 6 % > 5 %
        (service(requests=100, errors=5), False),  # exactly 5 %: strictly above fires
        (service(requests=100, errors=0), False),
        (service(requests=9, errors=9), False),  # 100 % but fewer than min_requests (10)
        (service(requests=10, errors=1), True),  # 10 % with exactly min_requests
        (service(requests=0, errors=0), False),  # no requests: no error rate
        (service(status="stale", requests=100, errors=50), False),  # stale: not live
    ],
    ids=["above", "at", "none", "too-few", "min-requests", "no-requests", "stale"],
)
def test_error_rate_is_strictly_above_with_enough_requests(
    report: ServiceReport, fires: bool
) -> None:
    samples = evaluate(rule({"error_rate": {"above": 0.05}}), Observations(services=[report]))
    if not fires:
        assert samples == []
        return
    assert samples == [
        Sample({"service": "orders"}, report.errors / report.requests, 0.05, "ratio")
    ]


def test_error_rate_min_requests_is_configurable() -> None:
    seen = Observations(services=[service(requests=15, errors=3)])  # 20 %
    assert evaluate(rule({"error_rate": {"above": 0.1, "min_requests": 20}}), seen) == []
    assert labelled(evaluate(rule({"error_rate": {"above": 0.1, "min_requests": 15}}), seen)) == [
        ({"service": "orders"}, 0.2)
    ]


def test_error_rate_yields_one_sample_per_service() -> None:
    seen = Observations(
        services=[
            service("api", requests=200, errors=20),
            service("web", requests=200, errors=2),
            service("db", requests=50, errors=25),
        ]
    )
    got = labelled(evaluate(rule({"error_rate": {"above": 0.05}}), seen))
    assert got == [({"service": "api"}, 0.1), ({"service": "db"}, 0.5)]


@pytest.mark.parametrize("which", ["p95", "p99"])
@pytest.mark.parametrize(
    ("value", "requests", "status", "fires"),
    [
        (0.3, 100, "healthy", True),
        (0.25, 100, "healthy", False),  # at the threshold
        (0.2, 100, "healthy", False),
        (None, 100, "healthy", False),  # no latency known
        (5.0, 9, "healthy", False),  # below min_requests
        (5.0, 100, "stale", False),
        (5.0, 100, "unhealthy", True),
    ],
)
def test_latency_percentiles_are_in_seconds(
    which: str, value: float | None, requests: int, status: ServiceStatus, fires: bool
) -> None:
    p95, p99 = (value, None) if which == "p95" else (None, value)
    report = service(requests=requests, status=status, p95=p95, p99=p99)
    r = rule({f"latency_{which}": {"above": "250ms"}})
    got = evaluate(r, Observations(services=[report]))
    if fires:
        assert value is not None
        assert got == [Sample({"service": "orders"}, value, 0.25, "seconds")]
    else:
        assert got == []


def test_latency_p95_reads_p95_and_p99_reads_p99() -> None:
    seen = Observations(services=[service(p95=0.1, p99=3.0)])
    assert evaluate(rule({"latency_p95": {"above": 1}}), seen) == []
    assert labelled(evaluate(rule({"latency_p99": {"above": 1}}), seen)) == [
        ({"service": "orders"}, 3.0)
    ]


def test_request_rate_fires_below_the_threshold() -> None:
    seen = Observations(
        services=[
            service("busy", request_rate=10.0),
            service("quiet", request_rate=0.2),
            service("edge", request_rate=0.5),  # at the threshold: not below
            service("logs-only", requests=0, request_rate=0.0),
        ]
    )
    got = evaluate(rule({"request_rate": {"below": 0.5}}), seen)
    assert got == [
        Sample({"service": "quiet"}, 0.2, 0.5, "rate"),
        Sample({"service": "logs-only"}, 0.0, 0.5, "rate"),
    ]


def test_stale_reports_seconds_since_seen_against_stale_after() -> None:
    seen = Observations(
        services=[
            service("api", since_seen=5.0),
            service("worker", status="stale", since_seen=90.0, stale_after=60.0),
            service("cron", status="stale", since_seen=4000.0, stale_after=3600.0),
        ]
    )
    assert evaluate(rule({"stale": True}), seen) == [
        Sample({"service": "worker"}, 90.0, 60.0, "seconds"),
        Sample({"service": "cron"}, 4000.0, 3600.0, "seconds"),
    ]


def test_health_unhealthy_or_degraded() -> None:
    seen = Observations(
        services=[
            service("a", status="healthy"),
            service("b", status="degraded"),
            service("c", status="unhealthy"),
            service("d", status="stale"),
        ]
    )
    unhealthy = evaluate(rule({"health": "unhealthy"}), seen)
    assert unhealthy == [Sample({"service": "c"}, 1.0, None, "count")]
    degraded = evaluate(rule({"health": "degraded"}), seen)  # degraded or worse
    assert labelled(degraded) == [({"service": "b"}, 0.5), ({"service": "c"}, 1.0)]


@pytest.mark.parametrize(
    "condition",
    [
        {"error_rate": {"above": 0.01}},
        {"latency_p99": {"above": 1}},
        {"request_rate": {"below": 100}},
        {"health": "degraded"},
        {"stale": True},
        {"log_count": {"above": 0}},
        {"error_group": "new"},
    ],
    ids=lambda c: next(iter(c)),
)
def test_a_named_service_limits_per_service_rules(condition: dict[str, Any]) -> None:
    reports = [
        service(name, status="stale" if condition == {"stale": True} else "unhealthy",
                requests=100, errors=50, request_rate=1.0, p99=5.0)
        for name in ("api", "web")
    ]  # fmt: skip

    class Groups:
        def changed_groups(self, kind: str) -> Sequence[Mapping[str, str]]:
            return [{"service": "api", "group": "g1"}, {"service": "web", "group": "g2"}]

    seen = Observations(
        services=reports,
        log_counts=lambda r: {"api": 3.0, "web": 4.0},
        error_groups=Groups(),
    )
    every = evaluate(rule(condition), seen)
    assert sorted(s.labels["service"] for s in every) == ["api", "web"]
    assert rule(condition).service == "*"  # per-service rules default to every service
    only = evaluate(rule(condition, service="web"), seen)
    assert [s.labels["service"] for s in only] == ["web"]
    assert evaluate(rule(condition, service="nobody"), seen) == []
