"""OTLP/gRPC load driver: pre-encoded bodies, bytes in and bytes out, many calls in flight.

``python -m benchmarks.grpc_load --target HOST:PORT --signal traces --payloads DIR
--duration 5 [--rate REQ_PER_S] [--concurrency 32]`` sends the bodies round-robin on one
grpc.aio channel, either as fast as ``concurrency`` calls in flight allow or at a fixed
offered rate (requests per second, scheduled open-loop; a call that would start more than a
second late is skipped and counted as ``late``). After ``duration`` seconds it stops starting
calls, waits for those in flight and prints one JSON line: ``ok`` and ``errors`` (by status
code) requests, ``late`` and ``elapsed``. No (de)serialisation happens here, so the driver
costs a small fraction of what the target spends on the same call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import grpc
import grpc.aio

from benchmarks.payloads import load

METHODS = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}


async def drive(
    target: str,
    method: str,
    bodies: list[bytes],
    duration: float,
    rate: float,
    concurrency: int,
    authorization: str | None = None,
) -> dict[str, object]:
    """Run the load (with ``authorization`` metadata when given); return the counts."""
    metadata = (("authorization", authorization),) if authorization else None
    options = [("grpc.max_send_message_length", 256 * 2**20)]
    errors: Counter[str] = Counter()
    ok = late = 0
    async with grpc.aio.insecure_channel(target, options=options) as channel:
        await asyncio.wait_for(channel.channel_ready(), 10)
        print("ready", flush=True)
        call = channel.unary_unary(method)  # no serializers: bytes in, bytes out
        slots = asyncio.Semaphore(concurrency)
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + duration
        tasks: set[asyncio.Task[None]] = set()

        async def one(body: bytes) -> None:
            nonlocal ok
            try:
                await call(body, timeout=30, metadata=metadata)
                ok += 1
            except grpc.aio.AioRpcError as exc:
                errors[exc.code().name] += 1
            finally:
                slots.release()

        sent = 0
        while True:
            now = loop.time()
            if now >= deadline:
                break
            if rate:
                due = start + sent / rate
                if due > now:
                    await asyncio.sleep(due - now)
                elif now - due > 1.0:
                    late += 1
                    sent += 1
                    continue
            await slots.acquire()
            task = asyncio.create_task(one(bodies[sent % len(bodies)]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
        if tasks:
            await asyncio.wait(tasks)
        elapsed = loop.time() - start
    return {"ok": ok, "errors": dict(errors), "late": late, "elapsed": elapsed}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.grpc_load", description=__doc__)
    parser.add_argument("--target", required=True)
    parser.add_argument("--signal", choices=sorted(METHODS), required=True)
    parser.add_argument("--payloads", type=Path, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--rate", type=float, default=0.0, help="requests/s; 0 = max")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--offset", type=int, default=0, help="first body to send")
    parser.add_argument("--authorization", help="authorization metadata (Bearer <token>)")
    args = parser.parse_args(argv)
    index = load(args.payloads)
    if index is None:
        parser.error(f"no payloads in {args.payloads}")
    bodies = index.bodies_of(args.signal, "pb")
    bodies = bodies[args.offset % len(bodies) :] + bodies[: args.offset % len(bodies)]
    began = time.time()
    result = asyncio.run(
        drive(args.target, METHODS[args.signal], bodies, args.duration, args.rate,
              args.concurrency, args.authorization)
    )  # fmt: skip
    result["began"] = began
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
