"""Pre-encoded OTLP request bodies for the load drivers.

``python -m benchmarks.payloads DIR [--bodies 2000] [--items 100] [--seed 1]`` writes, per
signal (traces, logs, metrics) and encoding (``pb`` protobuf, ``json`` OTLP/JSON), the bodies
concatenated in ``<signal>.<encoding>.bin`` with their sizes, one a line, in
``<signal>.<encoding>.idx``, plus ``index.json`` describing them. Every body is a different
request (seeded per body, so the files are the same for the same arguments), so no cache or
de-duplication in a target can help it. :func:`ensure` reuses a directory written with the
same arguments.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from benchmarks import telemetry

SIGNALS = ("traces", "logs", "metrics")
ENCODINGS = ("pb", "json")
CONTENT_TYPES = {"pb": "application/x-protobuf", "json": "application/json"}
FORMAT = 1  # bump when the generated content changes, so cached directories are rebuilt
_BUILDERS: dict[str, Callable[[random.Random, str, int], Message]] = {
    "traces": telemetry.traces_request,
    "logs": telemetry.logs_request,
    "metrics": telemetry.metrics_request,
}
_HEX_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId"})


@dataclass(frozen=True)
class BodySet:
    """The bodies of one signal in one encoding."""

    signal: str
    encoding: str
    count: int
    items_per_body: int
    total_bytes: int
    data: str  # file names, relative to the directory
    sizes: str

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.encoding]


@dataclass(frozen=True)
class Index:
    """What a payload directory holds."""

    directory: Path
    seed: str
    bodies: int
    items: int
    sets: dict[str, BodySet]  # key "<signal>.<encoding>"

    def get(self, signal: str, encoding: str) -> BodySet:
        return self.sets[f"{signal}.{encoding}"]

    def path(self, name: str) -> Path:
        return self.directory / name

    def bodies_of(self, signal: str, encoding: str) -> list[bytes]:
        """The bodies of one set, in order."""
        body_set = self.get(signal, encoding)
        data = self.path(body_set.data).read_bytes()
        sizes = [int(line) for line in self.path(body_set.sizes).read_text().split()]
        out, pos = [], 0
        for size in sizes:
            out.append(data[pos : pos + size])
            pos += size
        return out


def _hex_ids(value: Any) -> Any:
    """OTLP/JSON writes trace and span ids as hex, not as proto3 JSON's base64."""
    if isinstance(value, dict):
        return {
            k: base64.b64decode(v).hex()
            if k in _HEX_ID_KEYS and isinstance(v, str)
            else _hex_ids(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_hex_ids(v) for v in value]
    return value


def to_otlp_json(message: Message) -> bytes:
    """The OTLP/JSON encoding: lowerCamelCase keys, enums as integers, hex ids."""
    as_dict = MessageToDict(message, use_integers_for_enums=True)
    return json.dumps(_hex_ids(as_dict), separators=(",", ":")).encode()


def build_body(signal: str, seed: str, index: int, items: int) -> tuple[bytes, bytes]:
    """Body number ``index`` of ``signal``: (protobuf, OTLP/JSON)."""
    rng = random.Random(f"{seed}:{signal}:{index}")
    message = _BUILDERS[signal](rng, seed, items)
    return message.SerializeToString(deterministic=True), to_otlp_json(message)


def _build_chunk(args: tuple[str, str, int, int, int]) -> list[tuple[bytes, bytes]]:
    signal, seed, start, stop, items = args
    return [build_body(signal, seed, i, items) for i in range(start, stop)]


def generate(
    directory: Path, *, seed: str = "1", bodies: int = 2000, items: int = 100, jobs: int = 2
) -> Index:
    """Write every body set to ``directory`` and return its index."""
    directory.mkdir(parents=True, exist_ok=True)
    sets: dict[str, BodySet] = {}
    step = max(1, bodies // (jobs * 4))
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for signal in SIGNALS:
            chunks = [
                (signal, seed, a, min(a + step, bodies), items) for a in range(0, bodies, step)
            ]
            encoded = [pair for chunk in pool.map(_build_chunk, chunks) for pair in chunk]
            for e, encoding in enumerate(ENCODINGS):
                name = f"{signal}.{encoding}"
                blobs = [pair[e] for pair in encoded]
                (directory / f"{name}.bin").write_bytes(b"".join(blobs))
                (directory / f"{name}.idx").write_text("".join(f"{len(b)}\n" for b in blobs))
                sets[name] = BodySet(
                    signal, encoding, len(blobs), items, sum(map(len, blobs)),
                    f"{name}.bin", f"{name}.idx",
                )  # fmt: skip
    index = Index(directory, seed, bodies, items, sets)
    meta = {"format": FORMAT, "seed": seed, "bodies": bodies, "items": items,
            "sets": {k: asdict(v) for k, v in sets.items()}}  # fmt: skip
    (directory / "index.json").write_text(json.dumps(meta, indent=2) + "\n")
    return index


def load(directory: Path) -> Index | None:
    """The index of a payload directory, or None when there is none (or an old format)."""
    try:
        meta = json.loads((directory / "index.json").read_text())
    except (OSError, ValueError):
        return None
    if meta.get("format") != FORMAT:
        return None
    sets = {k: BodySet(**v) for k, v in meta["sets"].items()}
    if not all((directory / s.data).exists() for s in sets.values()):
        return None
    return Index(directory, meta["seed"], meta["bodies"], meta["items"], sets)


def ensure(directory: Path, *, seed: str = "1", bodies: int = 2000, items: int = 100) -> Index:
    """The payloads in ``directory``, generated first unless already there with these args."""
    index = load(directory)
    if index is not None and (index.seed, index.bodies, index.items) == (seed, bodies, items):
        return index
    print(f"generating {bodies} bodies x {len(SIGNALS)} signals in {directory} ...", flush=True)
    return generate(directory, seed=seed, bodies=bodies, items=items, jobs=os.cpu_count() or 1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.payloads", description=__doc__)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--bodies", type=int, default=2000, help="bodies per signal")
    parser.add_argument("--items", type=int, default=100, help="items per body")
    parser.add_argument("--seed", default="1")
    args = parser.parse_args(argv)
    index = ensure(args.directory, seed=args.seed, bodies=args.bodies, items=args.items)
    for name, body_set in index.sets.items():
        mean = body_set.total_bytes / body_set.count / 1024
        print(f"{name:14} {body_set.count} bodies x {body_set.items_per_body} items, "
              f"{body_set.total_bytes / 2**20:.1f} MiB ({mean:.1f} KiB per body)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
