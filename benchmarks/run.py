"""Benchmark otelgate against rotel on the same load, in the same run.

``python -m benchmarks.run [--duration 2.5] [--reps 3] [--quick]``

For each repetition, each product (otelgate, rotel) and configuration (``forward``: OTLP in,
OTLP out to the sink; ``full``: with enrichment and, for otelgate, everything its default
pipeline has), the target is started pinned to core 1, warmed up, then driven from core 0
over OTLP/HTTP protobuf, OTLP/gRPC and OTLP/JSON with traces and logs, at two load levels:

* ``fixed``: a fixed offered rate both products sustain (``--rate`` items/s for protobuf and
  gRPC, ``--json-rate`` for JSON), so CPU per item compares like with like;
* ``max``: as fast as the driver's connections go (32 in flight); a target below ~0.9 of its
  core there was limited by the driver and sink sharing core 0, not by itself.

It prints (and writes to ``--out``) the medians over the repetitions and the ratios
otelgate/rotel. See benchmarks/README.md for what is measured and how.

``--workers 1,2,auto`` runs otelgate once per worker count (``otelgate run --workers N``: a
supervisor and N worker processes) and, unless the axis is just ``1``, every target unpinned
(rotel's threads and otelgate's processes on every core; the driver and sink stay on core 0).
CPU then counts the whole process tree, the supervisor and the workers apart, and a second table
gives items/s, CPU per item, the ratios to rotel, the efficiency items/s(N) / (N x items/s(1))
and the load generator's CPU.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from benchmarks import payloads, proctree, report
from benchmarks.measure import TRANSPORTS, Load, Result, Sink, run_load
from benchmarks.targets import (
    DRIVER_CORE,
    TARGET_CORE,
    Target,
    free_port,
    rotel_binary,
    snapshot_source,
)

DEFAULT_WORKDIR = Path("/tmp/otelgate-bench")
CONNECTIONS = {"fixed": 16, "max": 32}
STATUS_LAG = 1.5  # s: workers send the supervisor their counters every second


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--duration", type=float, default=2.5, help="seconds of load per run")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (median reported)")
    parser.add_argument("--quick", action="store_true",
                        help="one repetition, traces only, 2 s runs (under 2 minutes)")  # fmt: skip
    parser.add_argument("--rate", type=float, default=20_000,
                        help="fixed level, items/s, OTLP/HTTP protobuf and gRPC")  # fmt: skip
    parser.add_argument("--json-rate", type=float, default=4_000,
                        help="fixed level, items/s, OTLP/JSON")  # fmt: skip
    parser.add_argument("--products", default="otelgate,rotel")
    parser.add_argument("--configs", default="forward,full")
    parser.add_argument("--transports", default=",".join(TRANSPORTS))
    parser.add_argument("--signals", default="traces,logs")
    parser.add_argument("--levels", default="fixed,max")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                        help="payload cache and scratch directory")  # fmt: skip
    parser.add_argument("--out", type=Path, help="results directory (default: under workdir)")
    parser.add_argument("--bodies", type=int, default=2000, help="distinct bodies per signal")
    parser.add_argument("--source", type=Path,
                        help="otelgate's packages from this directory (A/B a change)")  # fmt: skip
    parser.add_argument("--live", action="store_true",
                        help="run otelgate from the working tree, not a snapshot")  # fmt: skip
    parser.add_argument("--workers", default="1",
                        help="otelgate worker counts, e.g. 1,2,auto (otelgate run --workers N); "
                             "other than 1: every target unpinned")  # fmt: skip
    parser.add_argument("--unpinned", action="store_true",
                        help="run the targets on every core even with --workers 1")  # fmt: skip
    return parser


def _warm_up(target: Target, sink: Sink, index: payloads.Index, offered: dict[str, float]) -> None:
    """Half a second at the fixed rate per transport, discarded: imports, connections."""
    for transport, rate in offered.items():
        run_load(target, sink, Load("traces", transport, rate / index.items, 0.5, 8), index,
                 "warmup", -1)  # fmt: skip


def _store_drained(target: Target, patience: float = 120.0) -> dict[str, float]:
    """Wait until the ``store`` exporter's queue is empty (a backlog is written after the
    sink has everything); its counters then, empty without a store."""
    deadline = time.monotonic() + patience
    figures = target.exporter_figures("store")
    while figures.get("queued", 0.0) > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
        figures = target.exporter_figures("store")
    return figures


def _measure(target: Target, sink: Sink, load: Load, index: payloads.Index, level: str,
             rep: int) -> tuple[Result, dict[str, float]]:  # fmt: skip
    """One run; with a store, its CPU includes writing the store's backlog, and the second
    value is what the store did with the run's items (sent, dropped, failed, drain_s)."""
    before = _store_drained(target)
    result = run_load(target, sink, load, index, level, rep)
    if not before:
        return result, {}
    parts0, began = target.cpu_parts(), time.monotonic()
    after = _store_drained(target)
    drain = time.monotonic() - began
    extra = proctree.delta(target.cpu_parts(), parts0)
    parts = {k: v + extra.get(k, 0.0) for k, v in result.cpu_parts.items()}
    result = replace(result, cpu_seconds=result.cpu_seconds + extra["total"], cpu_parts=parts)
    store = {k: after[k] - before[k] for k in ("sent", "dropped", "failed")}
    return result, {**store, "queued": after["queued"], "drain_s": round(drain, 2)}


def _refused(target: Target, late: bool = False) -> dict[str, float]:
    """otelgate's refused items and requests so far, by reason (``/metrics``; empty for
    rotel): why a run had failed requests. ``late``: first wait until the workers' counters of
    the run just ended have reached the supervisor."""
    if target.product != "otelgate":
        return {}
    if late and target.worker_processes:  # workers report their counters every second
        time.sleep(STATUS_LAG)
    url = f"http://127.0.0.1:{target.admin_port}/metrics"
    text = httpx.get(url, headers=target.admin_headers(), timeout=10).text
    names = {"otelgate_receiver_refused_items_total": "items",
             "otelgate_receiver_refused_requests_total": "requests"}  # fmt: skip
    refused: dict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in names:
                key = f"{names[sample.name]} {sample.labels.get('reason', '?')}"
                refused[key] += float(sample.value)
    return dict(refused)


def _store_lines(shed: dict[tuple[str, str, str], list[dict[str, float]]]) -> list[str]:
    """Per target, signal and level: the medians of what the store wrote and dropped."""
    lines = []
    for (name, signal, level), runs in sorted(shed.items()):
        dropped = statistics.median(r["dropped"] for r in runs)
        total = statistics.median(r["sent"] + r["dropped"] + r["failed"] for r in runs)
        drain = statistics.median(r["drain_s"] for r in runs)
        lines.append(
            f"- {name} {signal} {level}: store dropped {dropped:,.0f} of {total:,.0f} items "
            f"({100 * dropped / total if total else 0:.1f} %), backlog written in {drain:.1f} s"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.quick:
        args.reps, args.duration, args.signals = 1, 2.0, "traces"
    products = args.products.split(",")
    configs = args.configs.split(",")
    transports = args.transports.split(",")
    signals = args.signals.split(",")
    levels = args.levels.split(",")
    workers = args.workers.split(",")
    pinned = not args.unpinned and workers == ["1"]
    targets = [(p, c, w) for p in products for c in configs
               for w in (workers if p == "otelgate" else ["1"])
               if p != "rotel" or c in ("forward", "full")]  # fmt: skip
    rotel = rotel_binary() if "rotel" in products else ""
    index = payloads.ensure(args.workdir / "payloads", bodies=args.bodies)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.out or args.workdir / f"results-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    source = args.source
    if source is None and not args.live and "otelgate" in products:
        source = snapshot_source(out / "src")
    offered = {t: args.json_rate if t == "http/json" else args.rate for t in transports}
    runs = args.reps * len(targets) * len(transports) * len(signals) * len(levels)
    estimate = runs * (args.duration + 1.3) + args.reps * len(targets) * 9
    header = [
        f"# otelgate vs rotel, {report.machine()}",
        f"# {report.versions(rotel) if rotel else ''}; {report.tree()}"
        f"{'' if source is None else f' (snapshot in {source})'}",
        f"# payloads: {index.bodies} distinct bodies per signal and encoding, "
        f"{index.items} items each ({index.directory})",
        f"# {runs} runs of {args.duration:g} s, {args.reps} repetition(s); "
        f"about {estimate / 60:.0f} min",
        f"# targets {'pinned to core ' + TARGET_CORE if pinned else 'unpinned'}; "
        f"driver and sink on core {DRIVER_CORE}; otelgate workers: {args.workers}",
    ]
    print("\n".join(header), flush=True)
    results: list[Result] = []
    components: dict[str, list[str]] = {}
    shed: dict[tuple[str, str, str], list[dict[str, float]]] = defaultdict(list)
    failures: list[str] = []  # otelgate's refusals, by reason, of runs that had some
    sink_ports = [free_port(), free_port()]
    sink = Sink(sink_ports, free_port(), out)
    began = time.monotonic()
    # fixed level first: max-level runs grow a Python heap, which is rarely given back
    plan = [(lv, t, s) for lv in levels for t in transports for s in signals]
    try:
        with (out / "runs.jsonl").open("w") as log:
            # the config variants switch otelgate's parts; rotel has one of each
            for rep, (product, config, count) in itertools.product(range(args.reps), targets):
                workdir = out / (f"{product}-{config}" + ("" if count == "1" else f"-w{count}"))
                target = Target(product, config, workdir, sink_ports, source=source,
                                workers=count, pinned=pinned)  # fmt: skip
                target.start()
                components[target.name] = target.components
                try:
                    _warm_up(target, sink, index, offered)
                    for level, transport, signal in plan:
                        rate = offered[transport] if level == "fixed" else 0.0
                        load = Load(signal, transport, rate / index.items, args.duration,
                                    CONNECTIONS[level])  # fmt: skip
                        refused0 = _refused(target)
                        result, store = _measure(target, sink, load, index, level, rep)
                        refused = proctree.delta(_refused(target, late=True), refused0)
                        refused = {k: v for k, v in refused.items() if v}
                        if refused:
                            failures.append(f"- {result.target} {transport} {signal} {level} "
                                            f"rep {rep}: refused {refused}")  # fmt: skip
                        results.append(result)
                        if store:
                            shed[(target.name, signal, level)].append(store)
                        log.write(
                            json.dumps({**asdict(result), "store": store, "refused": refused})
                            + "\n"
                        )
                        log.flush()
                        _progress(result)
                finally:
                    target.stop()
    finally:
        sink.stop()
    cells = report.summarise(results, offered)
    lines = [*header, f"# took {(time.monotonic() - began) / 60:.1f} min", ""]
    for name, active in components.items():
        lines.append(f"- {name}: {', '.join(active)}")
    lines += ["", f"fixed level: {args.rate:,.0f} items/s (protobuf, gRPC), "
              f"{args.json_rate:,.0f} items/s (JSON); max: 32 connections/calls in flight", "",
              report.table(cells, configs)]  # fmt: skip
    if shed:
        lines += ["", "store exporter (medians; its CPU includes writing the backlog):",
                  *_store_lines(shed)]  # fmt: skip
    if failures:
        lines += ["", "refused by otelgate (items / requests by reason):", *failures]
    if workers != ["1"] or not pinned:
        lines += ["", "## Workers", "", report.workers_section(results, configs, workers)]
    text = "\n".join(lines)
    (out / "results.md").write_text(text + "\n")
    print("\n" + text + f"\n\n(raw runs: {out / 'runs.jsonl'})")
    return 0 if all(c.complete for c in cells.values()) else 1


def _progress(r: Result) -> None:
    print(
        f"  {r.target:16} {r.transport:13} {r.signal:6} {r.level:5} rep {r.rep}: "
        f"{r.items_per_second:9,.0f} items/s  {r.cpu_us_per_item:7.2f} us/item  "
        f"core {r.core_share:4.2f}{_parts(r)}  load gen {r.load_cores:4.2f}  "
        f"rss {r.peak_rss / 2**20:4.0f} MiB  failed {r.failed_requests}"
        f"{'' if r.complete else f'  MISMATCH accepted {r.accepted} delivered {r.delivered}'}",
        flush=True,
    )


def _parts(r: Result) -> str:
    """Supervisor and workers' us/item, when there are workers."""
    if not r.worker_processes:
        return ""
    main, workers = r.part_us_per_item("main"), r.part_us_per_item("workers")
    return f" (sup {main:.2f} + {r.worker_processes} workers {workers:.2f} us/item)"


if __name__ == "__main__":
    sys.exit(main())
