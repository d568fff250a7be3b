"""Host, exporter, SLO, log and error-group conditions over hand-built inputs."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, Literal

import pytest

from gateway.alerting.evaluation import Observations, Sample, evaluate
from gateway.alerting.rules import RuleConfig
from tests.gateway.alerting.evaluation_inputs import disk, exporter, labelled, rule, snapshot

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


def test_dropped_items_counts_a_shedding_store_only_when_named() -> None:
    seen = Observations(
        lost_items={"store": lambda _: 40.0, "otlp": lambda _: 1.0},
        shedding=frozenset({"store"}),
    )
    assert labelled(evaluate(rule({"dropped_items": {"above": 0}}), seen)) == [
        ({"exporter": "otlp"}, 1.0)
    ]
    named = evaluate(rule({"dropped_items": {"above": 0, "name": "store"}}), seen)
    assert labelled(named) == [({"exporter": "store"}, 40.0)]


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
