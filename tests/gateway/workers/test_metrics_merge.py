"""The supervisor's merged ``/metrics``: real prometheus_client registries standing for the
supervisor and two workers, exposed with prometheus_client's own encoders and read back with
its parsers (and ``promtool check metrics`` when it is installed)."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter as Tally

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families

from gateway.selfmetrics import GatewayMetrics
from gateway.workers.metrics_merge import (
    GAUGE_RULES,
    MergedMetrics,
    WorkerMetricsBook,
    merge_families,
    merged_registry,
)
from gateway.workers.status import WorkerSlot, WorkerStatus

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class Process:
    """One process's registry: the gateway's self-metrics and a few others."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.metrics = GatewayMetrics(self.registry)
        self.reload_ok = Gauge(
            "otelgate_config_last_reload_successful", "Last reload ok.", registry=self.registry
        )

    def accept(self, items: int, signal: str = "traces") -> None:
        self.metrics.receiver_accepted.labels(signal, "http").inc(items)

    def status(self, index: int, pid: int) -> WorkerStatus:
        return WorkerStatus(index, pid, "running", {}, metrics=list(self.registry.collect()))


class Gateway:
    """A supervisor and two running workers (slots 0 and 1, pids 100 and 200)."""

    def __init__(self) -> None:
        self.supervisor = Process()
        self.workers = [Process(), Process()]
        self.slots = [
            WorkerSlot(0, pid=100, state="running"),
            WorkerSlot(1, pid=200, state="running"),
        ]
        self.merged = MergedMetrics(self.supervisor.registry, lambda: self.slots)

    def report(self) -> None:
        for slot, worker in zip(self.slots, self.workers, strict=True):
            assert slot.pid is not None
            self.merged.note(worker.status(slot.index, slot.pid))

    def scrape(self) -> Samples:
        """The classic text exposition, parsed; every series must appear once."""
        text = generate_latest(self.merged).decode()
        seen = [
            (s.name, tuple(sorted(s.labels.items())))
            for family in text_string_to_metric_families(text)
            for s in family.samples
        ]
        assert [k for k, n in Tally(seen).items() if n > 1] == []
        samples: Samples = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                samples[s.name, tuple(sorted(s.labels.items()))] = s.value
        return samples


def accepted(samples: Samples, signal: str = "traces") -> float:
    labels = (("signal", signal), ("transport", "http"))
    return samples["otelgate_receiver_accepted_items_total", labels]


def test_counters_and_histograms_are_summed_one_series_per_label_set() -> None:
    gw = Gateway()
    gw.supervisor.accept(5)
    gw.workers[0].accept(10)
    gw.workers[1].accept(20)
    gw.workers[1].accept(7, "logs")
    durations = [(gw.supervisor, 0.0002), (gw.workers[0], 0.003), (gw.workers[1], 0.003)]
    for process, seconds in durations:
        process.metrics.receiver_request_duration.labels("traces", "http").observe(seconds)
    gw.report()
    samples = gw.scrape()
    assert accepted(samples) == 35
    assert accepted(samples, "logs") == 7
    labels = (("signal", "traces"), ("transport", "http"))
    name = "otelgate_receiver_request_duration_seconds"
    assert samples[f"{name}_count", labels] == 3
    assert samples[f"{name}_sum", labels] == pytest.approx(0.0062)
    assert samples[f"{name}_bucket", (("le", "0.00025"), *labels)] == 1
    assert samples[f"{name}_bucket", (("le", "0.005"), *labels)] == 3
    assert samples[f"{name}_bucket", (("le", "+Inf"), *labels)] == 3
    # _created: the earliest of the three processes' series.
    created = [
        s.value
        for p in (gw.supervisor, *gw.workers)
        for f in p.registry.collect()
        for s in f.samples
        if s.name == "otelgate_receiver_accepted_items_created" and s.labels["signal"] == "traces"
    ]
    assert samples["otelgate_receiver_accepted_items_created", labels] == min(created)


def test_gauges_are_summed_unless_the_table_says_otherwise() -> None:
    gw = Gateway()
    for process, size, delay, ok in zip(
        (gw.supervisor, *gw.workers), (1, 2, 4), (0.01, 0.3, 0.02), (1, 0, 1), strict=True
    ):
        process.metrics.exporter_queue_size.labels("otlp").set(size)
        process.metrics.exporter_queue_capacity.labels("otlp").set(1000)
        process.metrics.event_loop_delay.set(delay)
        process.reload_ok.set(ok)
    gw.report()
    samples = gw.scrape()
    assert samples["otelgate_exporter_queue_size", (("exporter", "otlp"),)] == 7
    assert samples["otelgate_exporter_queue_capacity", (("exporter", "otlp"),)] == 3000
    assert samples["otelgate_event_loop_delay_seconds", ()] == 0.3  # the worst loop
    assert samples["otelgate_config_last_reload_successful", ()] == 0  # one process failed
    assert GAUGE_RULES["otelgate_event_loop_delay_seconds"] == "max"


def test_first_rule_keeps_the_supervisors_value_and_info_comes_from_it() -> None:
    def registry(budget: float, version: str) -> CollectorRegistry:
        r = CollectorRegistry(target_info={"version": version})
        Gauge("otelgate_slo_error_budget_remaining_ratio", "Budget.", ["slo"], registry=r).labels(
            "checkout"
        ).set(budget)
        return r

    merged = merge_families(
        [
            registry(0.25, "sup").collect(),
            registry(1.0, "w0").collect(),
            registry(1.0, "w1").collect(),
        ]
    )
    by_name = {m.name: m for m in merged}
    assert [s.value for s in by_name["otelgate_slo_error_budget_remaining_ratio"].samples] == [0.25]
    assert [s.labels for s in by_name["target"].samples] == [{"version": "sup"}]


def test_families_only_workers_have_appear_with_their_help() -> None:
    gw = Gateway()
    spans = Counter(
        "otelgate_worker_only", "Only workers count this.", ["k"], registry=gw.workers[1].registry
    )
    spans.labels("a").inc(3)
    gw.report()
    text = generate_latest(gw.merged).decode()
    assert "# HELP otelgate_worker_only_total Only workers count this." in text
    assert "# TYPE otelgate_worker_only_total counter" in text
    assert gw.scrape()["otelgate_worker_only_total", (("k", "a"),)] == 3


def test_a_restarted_worker_never_makes_a_counter_go_backwards() -> None:
    gw = Gateway()
    gw.supervisor.accept(5)
    gw.workers[0].accept(10)
    gw.workers[1].accept(20)
    gw.workers[0].metrics.exporter_queue_size.labels("otlp").set(50)
    gw.workers[1].metrics.exporter_queue_size.labels("otlp").set(1)
    gw.report()
    assert accepted(gw.scrape()) == 35
    # Worker 0 dies: while nothing runs in the slot its counters stay, its gauges go.
    old = gw.workers[0].status(0, 100)
    gw.slots[0].pid, gw.slots[0].state = None, "restarting"
    gw.merged.retire(100)  # its link is read to the end
    samples = gw.scrape()
    assert accepted(samples) == 35
    assert samples["otelgate_exporter_queue_size", (("exporter", "otlp"),)] == 1
    # A new process (pid 101) takes the slot; its counters start again from zero.
    gw.workers[0] = Process()
    gw.workers[0].accept(2)
    gw.slots[0].pid, gw.slots[0].state, gw.slots[0].restarts = 101, "running", 1
    gw.report()
    assert accepted(gw.scrape()) == 37
    gw.merged.note(old)  # a late report of the old process changes nothing
    gw.report()
    assert accepted(gw.scrape()) == 37
    # A second restart folds pid 101's total in too.
    gw.workers[0].accept(1)
    gw.report()
    gw.merged.retire(101)
    gw.workers[0] = Process()
    gw.slots[0].pid, gw.slots[0].restarts = 102, 2
    gw.report()
    samples = gw.scrape()
    assert accepted(samples) == 38
    assert samples["otelgate_worker_restarts_total", (("worker", "0"),)] == 2
    assert samples["otelgate_worker_up", (("worker", "0"),)] == 1


def test_a_replaced_process_draining_still_counts_then_retires() -> None:
    book = WorkerMetricsBook()
    a = Process()
    a.accept(4)
    book.note(10, list(a.registry.collect()))
    b = Process()
    b.accept(1)
    book.note(11, list(b.registry.collect()))  # pid 10 was replaced on reload, still draining
    a.accept(2)
    book.note(10, list(a.registry.collect()))
    live = [WorkerSlot(3, pid=11, state="running")]

    def total() -> float:
        merged = {m.name: m for m in merge_families(book.sources(live))}
        samples = merged["otelgate_receiver_accepted_items"].samples
        return sum(s.value for s in samples if s.name.endswith("_total"))

    assert total() == 7
    book.retire(10)
    book.note(10, [])  # a report read after the end changes nothing
    assert total() == 7


def test_worker_slot_metrics() -> None:
    gw = Gateway()
    gw.slots.append(WorkerSlot(2, pid=None, state="restarting", restarts=3))
    samples = gw.scrape()
    assert samples["otelgate_worker_restarts_total", (("worker", "2"),)] == 3
    assert samples["otelgate_worker_up", (("worker", "1"),)] == 1
    assert samples["otelgate_worker_up", (("worker", "2"),)] == 0
    assert samples["otelgate_workers", (("state", "running"),)] == 2
    assert samples["otelgate_workers", (("state", "restarting"),)] == 1
    assert samples["otelgate_workers", (("state", "stopped"),)] == 0


def busy_gateway() -> Gateway:
    gw = Gateway()
    for i, process in enumerate((gw.supervisor, *gw.workers)):
        process.accept(i + 1)
        process.accept(i + 2, "metrics")
        histogram = process.metrics.exporter_send_duration
        histogram.labels(f"e{i}", "traces").observe(0.01)  # a label set per process
        histogram.labels("otlp", "traces").observe(0.1 * (i + 1))  # and a shared one
        process.metrics.exporter_queue_size.labels("otlp").set(i)
    gw.report()
    return gw


def test_openmetrics_exposition_is_valid_and_merged() -> None:
    gw = busy_gateway()
    text = openmetrics.generate_latest(gw.merged).decode()
    families = list(parse_openmetrics(text))  # strict: groups, bucket order, _created
    keys = [(s.name, tuple(sorted(s.labels.items()))) for f in families for s in f.samples]
    assert [k for k, n in Tally(keys).items() if n > 1] == []
    send = next(f for f in families if f.name == "otelgate_exporter_send_duration_seconds")
    counts = {s.labels["exporter"]: s.value for s in send.samples if s.name.endswith("_count")}
    assert counts == {"e0": 1, "e1": 1, "e2": 1, "otlp": 3}
    # Through a registry too (what create_admin_app takes).
    assert openmetrics.generate_latest(merged_registry(gw.merged)) == text.encode()


def test_promtool_accepts_the_exposition() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    text = generate_latest(busy_gateway().merged)
    done = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
