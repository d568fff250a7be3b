"""Profile otelgate under benchmark load with py-spy and list where its CPU goes.

``python -m benchmarks.profile [--transport http/protobuf] [--signal traces]
[--config forward] [--rate 60000] [--seconds 15] [--native]``

Starts the sink and otelgate (pinned like in :mod:`benchmarks.run`), drives it at ``--rate``
items/s (below saturation, so no refusals distort the picture; 0 = max), and records it with
``py-spy record --gil --format raw`` meanwhile: only the thread holding the GIL is sampled,
so idle threads and the event loop waiting in epoll do not count. Prints the functions with
the most samples, self and inclusive, and the share of the samples each of a few cost centres
takes. The raw file (collapsed stacks) opens in speedscope or flamegraph.pl. Work done with
the GIL released (socket I/O, grpc's C core threads) shows in the process's CPU time but not
in the samples: compare the two.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from benchmarks import payloads
from benchmarks.measure import TRANSPORTS, Load, Sink, run_load
from benchmarks.run import DEFAULT_WORKDIR
from benchmarks.targets import Target, free_port, snapshot_source

# Cost centres: the first pattern matching a frame of a stack (innermost first) takes it.
CENTRES: tuple[tuple[str, str], ...] = (
    ("OTLP/JSON decode (gateway/otlp/json_*.py)", r"gateway/otlp/json_\w+\.py|gateway/otlp_json"),
    ("validation (gateway/otlp/validation.py)", r"gateway/(otlp/)?validation\.py"),
    ("protobuf decode (decode_protobuf)", r"^decode_protobuf "),
    ("item counting (Batch.from_request/count_items)", r"^count_items .*gateway/(otlp/)?batch\.py"),
    ("observers (health, SLO)", r"gateway/(signals|health|slo)/|gateway/observers\.py"),
    ("processors (resource, spanmetrics, ...)", r"gateway/processors/"),
    ("response encoding (build_response, SerializeToString)", r"^(build_response|_encode) "),
    ("self-metrics (prometheus_client)", r"prometheus_client/"),
    (
        "exporter: otlp push + grpc.aio client",
        r"exporters/otlp(/exporter)?\.py|grpc/aio/_call|_channel\.py",
    ),
    ("exporter queue (exporters/queue.py)", r"exporters/queue\.py"),
    ("gRPC server (grpc.aio, cygrpc)", r"grpc/_cython|grpc/aio/_server"),
    ("HTTP body reading (read_body)", r"^read_body "),
    ("Starlette/FastAPI (routing, Request, Response)", r"starlette/|fastapi/"),
    ("uvicorn HTTP protocol (httptools)", r"uvicorn/"),
    ("asyncio event loop", r"asyncio/"),
)


_OURS = re.compile(r"\((gateway|exporters)/(?!cli\.py)")


def _frames(stack: str) -> list[str]:
    return stack.split(";")


def _function(frame: str) -> str:
    """``name (file)`` without the line number."""
    return re.sub(r":\d+\)$", ")", frame)


def _centre(frames: list[str]) -> str:
    for frame in reversed(frames):  # innermost first
        for label, pattern in CENTRES:
            if re.search(pattern, frame):
                return label
    return "other"


def analyse(raw: Path, top: int = 25) -> str:
    """The report of a py-spy raw (collapsed stacks) file."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    centres: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_function(f) for f in _frames(stack)]
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
        centres[_centre(frames)] += count
    if not total:
        return "no samples"
    lines = [f"{total} samples", "", "cost centres (innermost matching frame):"]
    lines += [f"  {100 * n / total:5.1f}%  {label}" for label, n in centres.most_common()]
    lines += ["", f"top {top} functions, self:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    ours = Counter({k: n for k, n in inclusive.items() if _OURS.search(k)})
    lines += ["", f"top {top} of otelgate's functions, inclusive:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in ours.most_common(top)]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("--transport", choices=TRANSPORTS, default="http/protobuf")
    parser.add_argument("--signal", choices=("traces", "logs"), default="traces")
    parser.add_argument("--config", choices=("forward", "full"), default="forward")
    parser.add_argument("--rate", type=float, default=60_000, help="items/s; 0 = max")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--native", action="store_true", help="py-spy --native (C frames)")
    parser.add_argument("--idle", action="store_true",
                        help="sample every thread, not only the one holding the GIL")  # fmt: skip
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--source", type=Path, help="otelgate's packages from this directory")
    args = parser.parse_args(argv)
    index = payloads.ensure(args.workdir / "payloads")
    out = args.workdir / f"profile-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True)
    source = args.source or snapshot_source(out / "src")
    sink_ports = [free_port(), free_port()]
    sink = Sink(sink_ports, free_port(), out)
    target = Target("otelgate", args.config, out / "otelgate", sink_ports, source=source)
    raw = out / "profile.txt"
    try:
        target.start()
        run_load(target, sink, Load(args.signal, args.transport, 0, 1.0, 8), index, "max", -1)
        assert target.proc is not None
        spy = subprocess.Popen(
            ["py-spy", "record", "-p", str(target.proc.pid), "-r", "200", "-d",
             str(int(args.seconds + 1)), "--format", "raw", "-o", str(raw),
             *(["--native"] if args.native else []), *([] if args.idle else ["--gil"])],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(0.5)
        load = Load(args.signal, args.transport, args.rate / index.items, args.seconds, 32)
        result = run_load(target, sink, load, index, "fixed" if args.rate else "max", 0)
        _, errors = spy.communicate(timeout=args.seconds + 60)
        if spy.returncode != 0:
            print(errors, file=sys.stderr)
            return 1
    finally:
        target.stop()
        sink.stop()
    print(
        f"otelgate/{args.config} {args.transport} {args.signal}: "
        f"{result.items_per_second:,.0f} items/s, {result.cpu_us_per_item:.2f} CPU us/item, "
        f"core {result.core_share:.2f}, {result.failed_requests} refused (under py-spy)\n"
    )
    print(analyse(raw, args.top))
    print(f"\nraw profile (collapsed stacks; open in speedscope): {raw}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
