"""Every condition kind evaluated over hand-built observations (``evaluate`` is pure), the
``service:`` filter and how values are formatted."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import pytest

from gateway.alerting.evaluation import Observations, Sample, Unit, evaluate, format_value
from gateway.alerting.rules import RuleConfig
from gateway.health.config import ServiceThresholds
from gateway.health.services import Latency, ServiceReport, ServiceStatus
from gateway.health.status import ExporterReport
from gateway.health.system import FilesystemUsage, ProcessUsage, SystemSnapshot

T0 = 1_800_000_000.0


def rule(condition: dict[str, Any], **more: Any) -> RuleConfig:
    return RuleConfig.model_validate({"name": "R", "condition": condition, **more})


def service(
    name: str = "orders",
    *,
    status: ServiceStatus = "healthy",
    requests: int = 100,
    errors: int = 0,
    request_rate: float = 1.0,
    p95: float | None = None,
    p99: float | None = None,
    since_seen: float = 1.0,
    stale_after: float = 60.0,
) -> ServiceReport:
    return ServiceReport(
        name=name,
        status=status,
        reasons=[],
        last_seen=T0 - since_seen,
        seconds_since_seen=since_seen,
        signals={"traces": T0 - since_seen},
        window_seconds=300.0,
        requests=requests,
        errors=errors,
        request_rate=request_rate,
        error_rate=errors / requests if requests else None,
        latency=Latency(p50=None, p95=p95, p99=p99),
        thresholds=ServiceThresholds(stale_after=stale_after),
    )


def snapshot(
    *,
    idle: float = 0.5,
    iowait: float = 0.0,
    used: int = 50,
    total: int = 100,
    filesystems: Sequence[FilesystemUsage] = (),
) -> SystemSnapshot:
    return SystemSnapshot(
        at=T0,
        interval=5.0,
        cpu_modes={"user": 1.0 - idle - iowait, "idle": idle, "iowait": iowait},
        memory_total=total,
        memory_states={"used": used, "free": total - used},
        filesystems=tuple(filesystems),
        network=(),
        process=ProcessUsage(cpu_utilization=0.01, memory_rss=1, threads=1, open_fds=3),
    )


def disk(mountpoint: str, used: int, free: int, holds: Sequence[str]) -> FilesystemUsage:
    return FilesystemUsage(
        device=f"/dev/{mountpoint.strip('/') or 'root'}",
        mountpoint=mountpoint,
        type="ext4",
        total=used + free + 5,  # a root reserve: utilization is used / (used + free)
        used=used,
        free=free,
        holds=tuple(holds),
    )


def exporter(
    name: str,
    state: Literal["ok", "retrying", "failed"] = "ok",
    size: int = 0,
    capacity: int = 100,
) -> ExporterReport:
    return ExporterReport(
        name=name,
        state=state,
        last_error=None if state == "ok" else "connection refused",
        last_error_at=None if state == "ok" else T0,
        last_success_at=T0,
        queue_size=size,
        queue_capacity=capacity,
    )


def labelled(samples: list[Sample]) -> list[tuple[dict[str, str], float]]:
    return [(s.labels, s.value) for s in samples]


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


# -- the host --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("idle", "iowait", "fires"),
    [(0.05, 0.0, True), (0.1, 0.0, False), (0.05, 0.05, False), (0.5, 0.0, False)],
)
def test_cpu_is_busy_share_above_the_ratio(idle: float, iowait: float, fires: bool) -> None:
    seen = Observations(system=snapshot(idle=idle, iowait=iowait))
    got = evaluate(rule({"cpu": {"above": 0.9}}), seen)
    if fires:
        assert len(got) == 1 and got[0].labels == {} and got[0].unit == "ratio"
        assert got[0].value == pytest.approx(1.0 - idle - iowait)
        assert got[0].threshold == 0.9
    else:
        assert got == []


@pytest.mark.parametrize(("used", "fires"), [(95, True), (90, False), (10, False)])
def test_memory_is_used_over_total(used: int, fires: bool) -> None:
    seen = Observations(system=snapshot(used=used, total=100))
    expected = [Sample({}, used / 100, 0.9, "ratio")] if fires else []
    assert evaluate(rule({"memory": {"above": 0.9}}), seen) == expected


@pytest.mark.parametrize("condition", [{"cpu": {"above": 0}}, {"memory": {"above": 0}},
                                       {"filesystem": {"above": 0}}])  # fmt: skip
def test_host_rules_without_a_system_sample_do_not_fire(condition: dict[str, Any]) -> None:
    assert evaluate(rule(condition), Observations(watched_paths=["/data"])) == []


def test_filesystem_watches_the_gateway_paths_by_default() -> None:
    seen = Observations(
        system=snapshot(
            filesystems=[
                disk("/", used=95, free=5, holds=["/var/log/otelgate"]),  # 95 %
                disk("/data", used=91, free=9, holds=["/data/spool", "/data/store"]),  # 91 %
                disk("/mnt/other", used=99, free=1, holds=["/mnt/other/x"]),  # not watched
                disk("/scratch", used=50, free=50, holds=["/scratch/tmp"]),  # watched, 50 %
            ]
        ),
        watched_paths=["/var/log/otelgate", "/data/store", "/data/spool", "/scratch/tmp"],
    )
    got = evaluate(rule({"filesystem": {"above": 0.9}}), seen)
    assert got == [
        Sample({"path": "/var/log/otelgate", "mountpoint": "/"}, 0.95, 0.9, "ratio"),
        # Several watched paths on one filesystem: one alert, labelled with the first.
        Sample({"path": "/data/spool", "mountpoint": "/data"}, 0.91, 0.9, "ratio"),
    ]


def test_filesystem_with_explicit_paths_ignores_the_default_ones() -> None:
    seen = Observations(
        system=snapshot(
            filesystems=[
                disk("/", used=95, free=5, holds=["/var/log/otelgate"]),
                disk("/mnt/other", used=99, free=1, holds=["/mnt/other/x"]),
            ]
        ),
        watched_paths=["/var/log/otelgate"],
    )
    r = rule({"filesystem": {"above": 0.9, "paths": "/mnt/other/x"}})  # one path or a list
    assert r.condition.filesystem is not None
    assert r.condition.filesystem.paths == ["/mnt/other/x"]
    assert labelled(evaluate(r, seen)) == [({"path": "/mnt/other/x", "mountpoint": "/mnt/other"},
                                            0.99)]  # fmt: skip


def test_filesystem_paths_compare_as_absolute_paths() -> None:
    here = os.path.abspath("spool")
    seen = Observations(system=snapshot(filesystems=[disk("/", 99, 1, holds=[here])]))
    got = evaluate(rule({"filesystem": {"above": 0.5, "paths": ["spool"]}}), seen)
    assert labelled(got) == [({"path": here, "mountpoint": "/"}, 0.99)]


# -- exporters -------------------------------------------------------------------------------


def test_exporter_failing_means_retrying_or_failed() -> None:
    seen = Observations(
        exporters=[exporter("otlp/a"), exporter("otlp/b", "retrying"), exporter("file", "failed")]
    )
    got = evaluate(rule({"exporter": {"failing": True}}), seen)
    assert got == [
        Sample({"exporter": "otlp/b"}, 1.0, None, "count"),
        Sample({"exporter": "file"}, 1.0, None, "count"),
    ]
    named = evaluate(rule({"exporter": {"failing": True, "name": "file"}}), seen)
    assert labelled(named) == [({"exporter": "file"}, 1.0)]
    assert evaluate(rule({"exporter": {"failing": True, "name": "otlp/a"}}), seen) == []


def test_queue_fill_is_size_over_capacity() -> None:
    seen = Observations(
        exporters=[
            exporter("a", size=85, capacity=100),
            exporter("b", size=80, capacity=100),  # at the threshold
            exporter("c", size=10, capacity=100),
            exporter("d", size=5, capacity=0),  # no capacity: 0
        ]
    )
    assert evaluate(rule({"queue_fill": {"above": 0.8}}), seen) == [
        Sample({"exporter": "a"}, 0.85, 0.8, "ratio")
    ]
    assert evaluate(rule({"queue_fill": {"above": 0.05, "name": "c"}}), seen) == [
        Sample({"exporter": "c"}, 0.1, 0.05, "ratio")
    ]


def test_dropped_items_asks_for_the_rules_window() -> None:
    asked: list[tuple[str, float]] = []

    def losses(name: str, lost: dict[float, float]) -> Callable[[float], float]:
        def increase(window: float) -> float:
            asked.append((name, window))
            return lost.get(window, 0.0)

        return increase

    seen = Observations(
        lost_items={
            "otlp/b": losses("otlp/b", {300.0: 7.0, 60.0: 0.0}),
            "otlp/a": losses("otlp/a", {300.0: 12.0, 60.0: 3.0}),
            "file": losses("file", {}),
        }
    )
    got = evaluate(rule({"dropped_items": {"above": 0}}), seen)  # default window: 5m
    assert got == [  # sorted by exporter
        Sample({"exporter": "otlp/a"}, 12.0, 0.0, "count"),
        Sample({"exporter": "otlp/b"}, 7.0, 0.0, "count"),
    ]
    assert {window for _, window in asked} == {300.0}
    asked.clear()
    got = evaluate(rule({"dropped_items": {"above": 2, "window": "1m"}}), seen)
    assert labelled(got) == [({"exporter": "otlp/a"}, 3.0)]
    assert {window for _, window in asked} == {60.0}
    got = evaluate(rule({"dropped_items": {"above": 5, "name": "otlp/b"}}), seen)
    assert labelled(got) == [({"exporter": "otlp/b"}, 7.0)]
    assert evaluate(rule({"dropped_items": {"above": 12}}), seen) == []  # 12 is not above 12


# -- SLOs, logs, error groups ----------------------------------------------------------------

SLO_ALERTS = {
    "orders-availability": {"page": True, "ticket": True},
    "orders-latency": {"page": False, "ticket": True},
    "checkout": {"page": False, "ticket": False},
}


@pytest.mark.parametrize(
    ("slo", "severity", "expected"),
    [
        ("*", "page", ["orders-availability"]),
        ("*", "ticket", ["orders-availability", "orders-latency"]),
        ("orders-latency", "page", []),
        ("orders-latency", "ticket", ["orders-latency"]),
        ("checkout", "ticket", []),
        ("unknown", "page", []),
    ],
)
def test_slo_burn_by_name_or_every_slo(slo: str, severity: str, expected: list[str]) -> None:
    r = rule({"slo_burn": {"slo": slo, "severity": severity}})
    got = evaluate(r, Observations(slo_alerts=SLO_ALERTS))
    assert got == [Sample({"slo": name}, 1.0, None, "count") for name in expected]


def test_slo_burn_pages_by_default() -> None:
    r = rule({"slo_burn": {"slo": "*"}})
    assert labelled(evaluate(r, Observations(slo_alerts=SLO_ALERTS))) == [
        ({"slo": "orders-availability"}, 1.0)
    ]


def test_log_count_reads_the_counts_for_its_rule() -> None:
    asked: list[str] = []

    def counts(r: RuleConfig) -> Mapping[str, float]:
        asked.append(r.name)
        return {"web": 3.0, "api": 12.0, "db": 5.0}

    r = rule({"log_count": {"above": 4}})
    got = evaluate(r, Observations(log_counts=counts))
    assert got == [
        Sample({"service": "api"}, 12.0, 4.0, "count"),
        Sample({"service": "db"}, 5.0, 4.0, "count"),
    ]
    assert asked == ["R"]
    assert evaluate(r, Observations()) == []  # no log counter: nothing counted


def test_error_group_passes_the_sources_label_sets_through() -> None:
    class Source:
        def __init__(self) -> None:
            self.asked: list[str] = []

        def changed_groups(self, kind: Literal["new", "regression"]) -> list[dict[str, str]]:
            self.asked.append(kind)
            if kind == "new":
                return [{"service": "api", "group": "abc"}]
            return [{"service": "web", "group": "def"}, {"service": "api", "group": "ghi"}]

    source = Source()
    new = evaluate(rule({"error_group": "new"}), Observations(error_groups=source))
    assert new == [Sample({"service": "api", "group": "abc"}, 1.0, None, "count")]
    again = evaluate(
        rule({"error_group": "regression"}, service="api"), Observations(error_groups=source)
    )
    assert labelled(again) == [({"service": "api", "group": "ghi"}, 1.0)]
    assert source.asked == ["new", "regression"]
    assert evaluate(rule({"error_group": "new"}), Observations()) == []


# -- format_value ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (0.073, "ratio", "7.3%"),
        (0.05, "ratio", "5.0%"),
        (1.0, "ratio", "100.0%"),
        (1.25, "seconds", "1.25s"),
        (0.25, "seconds", "0.25s"),
        (0.0123456, "seconds", "0.0123s"),
        (90.0, "seconds", "90s"),
        (99.94, "seconds", "99.9s"),
        (100.0, "seconds", "100s"),
        (3600.4, "seconds", "3600s"),
        (12.0, "count", "12"),
        (0.5, "count", "0.5"),
        (0.5, "rate", "0.5/s"),
        (123.456, "rate", "123/s"),
    ],
)
def test_format_value(value: float, unit: Unit, text: str) -> None:
    assert format_value(value, unit) == text
