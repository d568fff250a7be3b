"""CPU per item of the exporters' translations, this tree against another, in the same run.

``python -m benchmarks.encoders --source DIR [--bodies N] [--reps R]`` times, for the packages
of this tree and of ``DIR`` (e.g. a worktree of an older commit) one after the other, in fresh
processes: the Loki push encoding (mapping + protobuf + snappy), the Loki OTLP-mode fitting
(only where it exists), and the remote write translation (``write_request``), over the same
realistic bodies (``benchmarks.payloads``). Prints microseconds of CPU per item (the median of
the repetitions) and the ratio new / old. Only APIs both trees have are called.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.telemetry import logs_request, metrics_request

# Runs inside the measured tree: reads the bodies, times each translation, prints JSON.
_MEASURE = r"""
import json, sys, time
from pathlib import Path
from statistics import median
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from gateway.otlp.batch import Batch, Signal
from exporters.loki.exporter import LokiExporter
from exporters.prometheus.remote_write import RemoteWriteExporter
from prometheus_client import CollectorRegistry

folder, reps = Path(sys.argv[1]), int(sys.argv[2])
logs = [ExportLogsServiceRequest.FromString(p.read_bytes()) for p in sorted(folder.glob("logs-*"))]
metrics = [ExportMetricsServiceRequest.FromString(p.read_bytes())
           for p in sorted(folder.glob("metrics-*"))]
log_batches = [Batch.from_request(Signal.LOGS, r) for r in logs]
metric_batches = [Batch.from_request(Signal.METRICS, r) for r in metrics]
results = {}

def timed(name, batches, work):
    runs = []
    for _ in range(reps):
        start = time.process_time()
        for batch in batches:
            work(batch)
        runs.append((time.process_time() - start) / sum(b.items for b in batches) * 1e6)
    results[name] = median(runs)

loki = LokiExporter("http://127.0.0.1:1")
timed("loki push encode", log_batches, loki.encode)
try:
    from exporters.loki import otlp as loki_otlp
    from exporters.loki.otlp import fit_for_loki
except ImportError:
    loki_otlp = None
if loki_otlp is not None and Path(loki_otlp.__file__).resolve().is_relative_to(Path.cwd()):
    from collections import Counter
    timed("loki otlp fit", log_batches, lambda b: fit_for_loki(b, 256 * 1024, Counter()))

def write(batch):
    exporter = RemoteWriteExporter("http://127.0.0.1:1", registry=CollectorRegistry())
    exporter.write_request(batch.request)

timed("remote write translate", metric_batches, write)
print(json.dumps(results))
"""


def _bodies(folder: Path, count: int) -> None:
    import random

    rng = random.Random(1)
    for i in range(count):
        (folder / f"logs-{i:04}").write_bytes(logs_request(rng, "1", 100).SerializeToString())
        (folder / f"metrics-{i:04}").write_bytes(metrics_request(rng, "1", 100).SerializeToString())


def _measure(source: Path | None, folder: Path, reps: int) -> dict[str, float]:
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = str(source.resolve())
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(folder), str(reps)],
        env=env, capture_output=True, text=True, check=True,
        cwd=source or Path.cwd(),
    )  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="the other tree's packages")
    parser.add_argument("--bodies", type=int, default=200, help="bodies of 100 items each")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _bodies(folder, args.bodies)
        old = _measure(args.source, folder, args.reps)
        new = _measure(None, folder, args.reps)
    print(f"{'translation':<26}{'this tree µs/item':>18}{'--source µs/item':>18}{'ratio':>8}")
    for name, cost in new.items():
        before = old.get(name)
        shown = f"{before:18.2f}{cost / before:8.2f}" if before else f"{'—':>18}{'':>8}"
        print(f"{name:<26}{cost:18.2f}{shown}")


if __name__ == "__main__":
    main()
