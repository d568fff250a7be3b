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
