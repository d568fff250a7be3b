"""Medians over repetitions, ratios otelgate/rotel, and the results table (Markdown)."""

from __future__ import annotations

import datetime
import math
import os
import platform
import statistics
import subprocess
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from benchmarks.measure import Result

MIB = 2**20


@dataclass(frozen=True)
class Cell:
    """The median of the repetitions of one (target, transport, signal, level)."""

    runs: int
    items_per_second: float
    cpu_us_per_item: float
    core_share: float
    peak_rss_mib: float
    failed: int  # requests refused or failed, summed over the runs
    complete: bool  # delivered == accepted in every run
    sustained: bool  # a fixed-rate run reached its offered rate


def _median(values: Iterable[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return statistics.median(values) if values else float("nan")


def summarise(results: Sequence[Result], offered: dict[str, float]) -> dict[tuple[str, ...], Cell]:
    """Cells keyed by (target, transport, signal, level); ``offered`` is items/s per transport."""
    groups: dict[tuple[str, ...], list[Result]] = defaultdict(list)
    for r in results:
        groups[(r.target, r.transport, r.signal, r.level)].append(r)
    cells = {}
    for key, runs in groups.items():
        rate = offered.get(key[1], 0.0)
        cells[key] = Cell(
            runs=len(runs),
            items_per_second=_median(r.items_per_second for r in runs),
            cpu_us_per_item=_median(r.cpu_us_per_item for r in runs),
            core_share=_median(r.core_share for r in runs),
            peak_rss_mib=_median(r.peak_rss / MIB for r in runs),
            failed=sum(r.failed_requests + r.socket_errors + r.late for r in runs),
            complete=all(r.complete for r in runs),
            sustained=key[3] != "fixed" or all(r.items_per_second >= 0.97 * rate for r in runs),
        )
    return cells


def _fmt(value: float, digits: int = 0) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def _ratio(a: float, b: float) -> str:
    return "n/a" if math.isnan(a) or math.isnan(b) or not b else f"{a / b:.2f}x"


def table(cells: dict[tuple[str, ...], Cell], configs: Sequence[str]) -> str:
    """One row per configuration, transport, signal and load level: otelgate, rotel, ratio."""
    head = (
        "| config | transport | signal | load | items/s otelgate | items/s rotel | ratio "
        "| CPU us/item otelgate | CPU us/item rotel | ratio | core otelgate | core rotel "
        "| peak RSS MiB otelgate | peak RSS MiB rotel | ratio | errors o/r "
        "| delivered==accepted o/r |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    keys = sorted({k[1:] for k in cells}, key=_order)
    for config in configs:
        for transport, signal, level in keys:
            og = cells.get((f"otelgate/{config}", transport, signal, level))
            ro = cells.get((f"rotel/{config}", transport, signal, level))
            if og is None and ro is None:
                continue
            nan = Cell(0, *(float("nan"),) * 4, 0, False, False)
            o, r = og or nan, ro or nan
            flag = {True: "yes", False: "NO"}
            lines.append(
                f"| {config} | {transport} | {signal} | {level}"
                f"{'' if o.sustained and r.sustained else ' (not sustained)'} "
                f"| {_fmt(o.items_per_second)} | {_fmt(r.items_per_second)} "
                f"| {_ratio(o.items_per_second, r.items_per_second)} "
                f"| {_fmt(o.cpu_us_per_item, 2)} | {_fmt(r.cpu_us_per_item, 2)} "
                f"| {_ratio(o.cpu_us_per_item, r.cpu_us_per_item)} "
                f"| {_fmt(o.core_share, 2)} | {_fmt(r.core_share, 2)} "
                f"| {_fmt(o.peak_rss_mib)} | {_fmt(r.peak_rss_mib)} "
                f"| {_ratio(o.peak_rss_mib, r.peak_rss_mib)} "
                f"| {o.failed}/{r.failed} | {flag[o.complete]}/{flag[r.complete]} |"
            )
    return "\n".join(lines)


def _order(key: tuple[str, ...]) -> tuple[int, int, int]:
    transport, signal, level = key
    transports = ("http/protobuf", "grpc", "http/json")
    return (transports.index(transport) if transport in transports else 9,
            ("traces", "logs", "metrics").index(signal), ("fixed", "max").index(level))  # fmt: skip


def machine() -> str:
    """nproc, CPU model, kernel, Python, date: for the record."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(
                (
                    line.split(":", 1)[1].strip()
                    for line in cpuinfo
                    if line.startswith("model name")
                ),
                model,
            )
    except OSError:
        pass
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    return (
        f"date {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs "
        f"({model}); Linux {platform.release()}; Python {platform.python_version()}; "
        f"load average at the start {load}"
    )


def versions(rotel_binary: str) -> str:
    """The versions of the two products under test."""
    from gateway import __version__

    try:
        out = subprocess.run(
            [rotel_binary, "--version"], capture_output=True, text=True, timeout=10
        )
        rotel = out.stdout.strip() or out.stderr.strip()
    except OSError as exc:
        rotel = f"unknown ({exc})"
    return f"otelgate {__version__}; {rotel}"


def tree() -> str:
    """The commit of the working tree, and whether otelgate's code differs from it."""
    from benchmarks.targets import PACKAGES, REPO

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
        return done.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--", *PACKAGES).splitlines()
    return f"tree {head}" + (
        f" + {len(changed)} changed file(s) in otelgate's code" if changed else ""
    )


# --- the --workers axis ------------------------------------------------------------------------


@dataclass(frozen=True)
class Scaled:
    """The medians of one (target, workers) in one (config, transport, signal, level)."""

    processes: int  # otelgate worker processes (0: one process; rotel: 0)
    items_per_second: float
    cpu_us: float  # the whole tree
    main_us: float  # the root process: the supervisor, or the only process
    workers_us: float  # the worker processes together
    cores: float  # the target's CPU over the window
    load_cores: float  # driver + sink
    driver_cores: float
    failed: int
    complete: bool


def _scaled(runs: Sequence[Result]) -> Scaled:
    return Scaled(
        processes=max(r.worker_processes for r in runs),
        items_per_second=_median(r.items_per_second for r in runs),
        cpu_us=_median(r.cpu_us_per_item for r in runs),
        main_us=_median(r.part_us_per_item("main") for r in runs),
        workers_us=_median(r.part_us_per_item("workers") for r in runs),
        cores=_median(r.core_share for r in runs),
        load_cores=_median(r.load_cores for r in runs),
        driver_cores=_median(r.driver_cpu / r.window for r in runs),
        failed=sum(r.failed_requests + r.socket_errors + r.late for r in runs),
        complete=all(r.complete for r in runs),
    )


def workers_section(
    results: Sequence[Result], configs: Sequence[str], workers: Sequence[str]
) -> str:
    """Per cell: otelgate at each worker count and rotel (all unpinned), with the ratios to
    rotel, the efficiency items/s(N) / (N x items/s(1)), supervisor and worker CPU per item and
    the load generator's cores; then the model throughput(N) = min(N x W, S, cores bound)."""
    groups: dict[tuple[str, ...], list[Result]] = defaultdict(list)
    for r in results:
        product, config = r.target.split("/")[:2]
        who = f"otelgate w{r.workers}" if product == "otelgate" else product
        groups[(config, r.transport, r.signal, r.level, who)].append(r)
    head = (
        "| config | transport | signal | load | target | processes | items/s | vs rotel "
        "| CPU us/item | vs rotel | supervisor us/item | workers us/item | cores used "
        "| efficiency | load gen cores (driver) | errors | delivered==accepted |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    model: list[str] = []
    keys = sorted({k[1:4] for k in groups}, key=_order)
    whos = [f"otelgate w{w}" for w in workers] + ["rotel"]
    for config in configs:
        for key in keys:
            cells = {
                w: _scaled(groups[(config, *key, w)]) for w in whos if (config, *key, w) in groups
            }
            if not cells:
                continue
            ro, one = cells.get("rotel"), cells.get("otelgate w1")
            for who, c in cells.items():
                n = max(c.processes, 1)
                eff = (
                    c.items_per_second / (n * one.items_per_second)
                    if one and who != "rotel"
                    else math.nan
                )
                procs = (
                    "1 (threads)"
                    if who == "rotel"
                    else (f"1 + {c.processes}" if c.processes else "1")
                )
                sup, wrk = (c.main_us, c.workers_us) if c.processes else (math.nan, math.nan)
                lines.append(
                    f"| {config} | {key[0]} | {key[1]} | {key[2]} | {who} | {procs} "
                    f"| {_fmt(c.items_per_second)} "
                    f"| {_ratio(c.items_per_second, ro.items_per_second) if ro else 'n/a'} "
                    f"| {_fmt(c.cpu_us, 2)} | {_ratio(c.cpu_us, ro.cpu_us) if ro else 'n/a'} "
                    f"| {_fmt(sup, 2)} | {_fmt(wrk, 2)} | {_fmt(c.cores, 2)} | {_fmt(eff, 2)} "
                    f"| {_fmt(c.load_cores, 2)} ({_fmt(c.driver_cores, 2)}) | {c.failed} "
                    f"| {'yes' if c.complete else 'NO'} |"
                )
            multi = [groups[(config, *key, w)] for w, c in cells.items() if c.processes]
            if multi:
                model.append(
                    _model(f"{config} {' '.join(key)}", _scaled([r for g in multi for r in g]))
                )
    return "\n".join([*lines, "", *model])


def _model(label: str, c: Scaled) -> str:
    """throughput(N) = min(N x W, S, (C - L) / (w + s)): W = 1e6 / w (one worker on a core), S =
    1e6 / s (the supervisor on a core), C the host's cores, L the load generator's."""
    w, s = c.workers_us, c.main_us
    if math.isnan(w) or math.isnan(s) or not w or not s:
        return f"- {label}: n/a"
    per_worker, supervisor = 1e6 / w, 1e6 / s
    host = os.cpu_count() or 1
    cores_bound = max(host - c.load_cores, 0.0) * 1e6 / (w + s)
    predicted = {n: min(n * per_worker, supervisor) for n in (1, 2, 4, 8, 16)}
    return (
        f"- {label}: worker {w:.2f} us/item -> W = {per_worker:,.0f} items/s per worker; "
        f"supervisor {s:.2f} us/item -> S = {supervisor:,.0f} items/s; more workers stop "
        f"helping at N = S/W = {supervisor / per_worker:.1f}; min(N x W, S): "
        + ", ".join(f"N={n} {v:,.0f}" for n, v in predicted.items())
        + f"; this host ({host} cores, load generator {c.load_cores:.2f}): "
        f"(C - L) x 1e6 / (w + s) = {cores_bound:,.0f} items/s "
        f"(measured {c.items_per_second:,.0f} with {c.processes} workers)"
    )
