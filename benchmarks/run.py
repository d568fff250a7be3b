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

from benchmarks import payloads, report
from benchmarks.measure import TRANSPORTS, Load, Result, Sink, run_load
from benchmarks.targets import Target, free_port, rotel_binary, snapshot_source

DEFAULT_WORKDIR = Path("/tmp/otelgate-bench")
CONNECTIONS = {"fixed": 16, "max": 32}


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
    cpu0, began = target.cpu_seconds(), time.monotonic()
    after = _store_drained(target)
    drain = time.monotonic() - began
    result = replace(result, cpu_seconds=result.cpu_seconds + target.cpu_seconds() - cpu0)
    store = {k: after[k] - before[k] for k in ("sent", "dropped", "failed")}
    return result, {**store, "queued": after["queued"], "drain_s": round(drain, 2)}


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
    rotel = rotel_binary() if "rotel" in products else ""
    index = payloads.ensure(args.workdir / "payloads", bodies=args.bodies)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.out or args.workdir / f"results-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    source = args.source
    if source is None and not args.live and "otelgate" in products:
        source = snapshot_source(out / "src")
    offered = {t: args.json_rate if t == "http/json" else args.rate for t in transports}
    runs = args.reps * len(products) * len(configs) * len(transports) * len(signals) * len(levels)
    estimate = runs * (args.duration + 1.3) + args.reps * len(products) * len(configs) * 9
    header = [
        f"# otelgate vs rotel, {report.machine()}",
        f"# {report.versions(rotel) if rotel else ''}; {report.tree()}"
        f"{'' if source is None else f' (snapshot in {source})'}",
        f"# payloads: {index.bodies} distinct bodies per signal and encoding, "
        f"{index.items} items each ({index.directory})",
        f"# {runs} runs of {args.duration:g} s, {args.reps} repetition(s); "
        f"about {estimate / 60:.0f} min",
    ]
    print("\n".join(header), flush=True)
    results: list[Result] = []
    components: dict[str, list[str]] = {}
    shed: dict[tuple[str, str, str], list[dict[str, float]]] = defaultdict(list)
    sink_ports = [free_port(), free_port()]
    sink = Sink(sink_ports, free_port(), out)
    began = time.monotonic()
    # fixed level first: max-level runs grow a Python heap, which is rarely given back
    plan = [(lv, t, s) for lv in levels for t in transports for s in signals]
    try:
        with (out / "runs.jsonl").open("w") as log:
            for rep, product, config in itertools.product(range(args.reps), products, configs):
                if product == "rotel" and config not in ("forward", "full"):
                    continue  # the variants switch otelgate's parts; rotel has one of each
                workdir = out / f"{product}-{config}"
                target = Target(product, config, workdir, sink_ports, source=source)
                target.start()
                components[target.name] = target.components
                try:
                    _warm_up(target, sink, index, offered)
                    for level, transport, signal in plan:
                        rate = offered[transport] if level == "fixed" else 0.0
                        load = Load(signal, transport, rate / index.items, args.duration,
                                    CONNECTIONS[level])  # fmt: skip
                        result, store = _measure(target, sink, load, index, level, rep)
                        results.append(result)
                        if store:
                            shed[(target.name, signal, level)].append(store)
                        log.write(json.dumps({**asdict(result), "store": store}) + "\n")
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
    text = "\n".join(lines)
    (out / "results.md").write_text(text + "\n")
    print("\n" + text + f"\n\n(raw runs: {out / 'runs.jsonl'})")
    return 0 if all(c.complete for c in cells.values()) else 1


def _progress(r: Result) -> None:
    print(
        f"  {r.target:16} {r.transport:13} {r.signal:6} {r.level:5} rep {r.rep}: "
        f"{r.items_per_second:9,.0f} items/s  {r.cpu_us_per_item:7.2f} us/item  "
        f"core {r.core_share:4.2f}  rss {r.peak_rss / 2**20:4.0f} MiB  failed {r.failed_requests}"
        f"{'' if r.complete else f'  MISMATCH accepted {r.accepted} delivered {r.delivered}'}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
