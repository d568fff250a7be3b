"""Sustained load: is peak RSS flat over minutes, and does every item still arrive?

``python -m benchmarks.soak [--minutes 5] [--rate 20000] [--config full] [--products ...]``

Drives each product in turn with OTLP/HTTP protobuf at a fixed rate, traces and logs
alternating, in slices of ``--slice`` seconds (each slice a measured run of
:func:`benchmarks.measure.run_load`, so delivered == accepted is checked slice by slice), and
prints the peak RSS of every slice, then per product the first and last slice's peak and the
growth from the first to the last.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks import payloads
from benchmarks.measure import Load, Result, Sink, run_load
from benchmarks.run import DEFAULT_WORKDIR
from benchmarks.targets import Target, free_port, snapshot_source

MIB = 2**20


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--minutes", type=float, default=5.0, help="per product")
    parser.add_argument("--slice", type=float, default=30.0, help="seconds per measured slice")
    parser.add_argument("--rate", type=float, default=20_000, help="items/s")
    parser.add_argument("--config", choices=("forward", "full"), default="full")
    parser.add_argument("--products", default="otelgate,rotel")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    args = parser.parse_args(argv)
    index = payloads.ensure(args.workdir / "payloads")
    out = args.workdir / f"soak-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True)
    source = snapshot_source(out / "src") if "otelgate" in args.products else None
    sink_ports = [free_port(), free_port()]
    sink = Sink(sink_ports, free_port(), out)
    slices = max(2, round(args.minutes * 60 / args.slice))
    summary: list[str] = []
    ok = True
    try:
        for product in args.products.split(","):
            target = Target(product, args.config, out / product, sink_ports, source=source)
            target.start()
            runs: list[Result] = []
            try:
                for i in range(slices):
                    signal = ("traces", "logs")[i % 2]
                    load = Load(signal, "http/protobuf", args.rate / index.items, args.slice, 16)
                    result = run_load(target, sink, load, index, "fixed", i)
                    runs.append(result)
                    ok &= result.complete and not result.failed_requests
                    print(f"  {target.name:16} slice {i + 1:2}/{slices} {signal:6} "
                          f"{result.items_per_second:8,.0f} items/s "
                          f"{result.cpu_us_per_item:6.2f} us/item "
                          f"rss {result.peak_rss / MIB:6.1f} MiB "
                          f"{'ok' if result.complete else 'MISMATCH'}", flush=True)  # fmt: skip
            finally:
                target.stop()
            first, last = runs[0].peak_rss / MIB, runs[-1].peak_rss / MIB
            peak = max(r.peak_rss for r in runs) / MIB
            summary.append(
                f"| {target.name} | {slices * args.slice / 60:.1f} | {first:.1f} | {last:.1f} "
                f"| {peak:.1f} | {last - first:+.1f} | "
                f"{'yes' if all(r.complete for r in runs) else 'NO'} |"
            )
    finally:
        sink.stop()
    print(f"\nsoak at {args.rate:,.0f} items/s, OTLP/HTTP protobuf, traces and logs alternating\n")
    print("| target | minutes | peak RSS MiB, first slice | last slice | max | growth "
          "| delivered==accepted |\n|---|---|---|---|---|---|---|")  # fmt: skip
    print("\n".join(summary))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
