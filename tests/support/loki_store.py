"""What the Loki look-alike holds, and the rules by which Loki takes a push into it.

A push (decoded by :mod:`tests.support.loki_wire`) is judged like Loki 3 with default limits:
a structured-metadata name that normalises to nothing refuses the whole push (500); a push
bigger than the ingestion burst (6 MB) is refused whole with 429, every time; otherwise each
stream and entry is judged alone (labels, line size, metadata size, age, the out-of-order
window) and the valid ones are **stored even when others are refused**: the answer is then 400
naming the refused entries. An entry identical (timestamp, line) to one held is ignored.
Entries out of order within a push are accepted (``unordered_writes``).

A request to the OTLP endpoint: an attribute key that normalises to nothing refuses the whole
request (400); a record whose line, structured metadata (its own, scope and non-label resource
attributes) or label values are over the limits above is refused alone (400), the others
stored. Each behaviour and its source is listed in ``tests/support/REAL_LOKI.md``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from tests.support.loki_wire import (
    OUT_OF_ORDER_WINDOW_NS,
    LokiEntry,
    LokiStream,
    Rejected,
    check_labels,
    entry_problem,
    normalize_name,
    otlp_keys,
    otlp_label_problem,
    otlp_record_problem,
)

BURST_BYTES = 6 * 1024 * 1024  # ingestion_burst_size_mb: 6
RATE_BYTES = 4 * 1024 * 1024  # ingestion_rate_mb: 4
MAX_AGE_NS = 7 * 24 * 3600 * 10**9  # reject_old_samples_max_age: 168h


def selector_text(labels: dict[str, str]) -> str:
    """Labels shown as Loki shows a stream in its messages."""
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


@dataclass(frozen=True)
class LokiPush:
    """One accepted push: ``kind`` is ``protobuf`` or ``json``; headers are lower-case."""

    kind: str
    streams: tuple[LokiStream, ...]
    headers: dict[str, str]
    at: float
    selectors: tuple[str, ...] = ()  # the labels strings exactly as sent (protobuf)


@dataclass(frozen=True)
class OtlpLogsPush:
    request: ExportLogsServiceRequest
    headers: dict[str, str]
    at: float


class LokiStore:
    """The pushes and OTLP requests Loki stored, judged on the way in (see module doc).

    Called from the server's handler threads: everything it holds is guarded by ``lock``.
    ``max_age_ns`` None is Loki's ``reject_old_samples: false``.
    """

    def __init__(
        self,
        *,
        max_age_ns: int | None = MAX_AGE_NS,
        burst_bytes: int = BURST_BYTES,
        unordered_writes: bool = True,
    ) -> None:
        self.max_age_ns = max_age_ns
        self.burst_bytes = burst_bytes
        self.unordered_writes = unordered_writes
        self.lock = threading.Lock()
        self.pushes: list[LokiPush] = []
        self.otlp: list[OtlpLogsPush] = []
        self.ignored: list[str] = []  # why each refused entry was refused
        self.duplicates = 0
        self._newest: dict[tuple[tuple[str, str], ...], int] = {}
        self._held: dict[tuple[tuple[str, str], ...], set[tuple[int, str]]] = {}

    def accept_push(self, kind: str, streams: list[LokiStream], headers: dict[str, str],
                    selectors: list[str]) -> None:  # fmt: skip
        """Judge the push like Loki (see module doc): store what is valid, then raise a 400
        naming what was not."""
        lines = size = 0
        for stream in streams:
            for entry in stream.entries:
                for name, _ in entry.metadata:
                    normalize_name(name)  # 500 for the whole push
                lines += 1
                size += len(entry.line.encode())
                size += sum(len(k.encode()) + len(v.encode()) for k, v in entry.metadata)
        if size > self.burst_bytes:
            raise Rejected(
                429,
                f"ingestion rate limit exceeded for user fake (limit: {RATE_BYTES} bytes/sec) "
                f"while attempting to ingest '{lines}' lines totaling '{size}' bytes, reduce log "
                "volume or contact your Loki administrator to see if the limit can be increased",
            )
        problems: list[str] = []
        kept_streams: list[LokiStream] = []
        with self.lock:
            for stream in streams:
                shown = selector_text(stream.labels)
                try:
                    check_labels(stream.labels, shown)
                except Rejected as error:
                    problems += [str(error)] * len(stream.entries)
                    continue
                kept = self._judge(stream, shown, problems)
                if kept:
                    kept_streams.append(LokiStream(stream.labels, tuple(kept)))
            self.ignored += problems
            if kept_streams:
                push = LokiPush(
                    kind, tuple(kept_streams), headers, time.monotonic(), tuple(selectors)
                )
                self.pushes.append(push)
        if problems:
            raise Rejected(400, "\n".join(problems[:10]) + f"\ntotal ignored: {len(problems)}")

    def _judge(self, stream: LokiStream, shown: str, problems: list[str]) -> list[LokiEntry]:
        """The entries of ``stream`` Loki stores (called with the lock held)."""
        key = tuple(sorted(stream.labels.items()))
        held = self._held.setdefault(key, set())
        oldest = time.time_ns() - self.max_age_ns if self.max_age_ns is not None else None
        kept: list[LokiEntry] = []
        for entry in stream.entries:
            problem = entry_problem(entry, shown)
            newest = self._newest.get(key)
            if problem is None and oldest is not None and entry.ns < oldest:
                problem = (f"entry for stream '{shown}' has timestamp too old: {entry.ns}, "
                           f"oldest acceptable timestamp is: {oldest}")  # fmt: skip
            if problem is None and newest is not None:
                if entry.ns < newest - OUT_OF_ORDER_WINDOW_NS:
                    problem = (
                        f"entry with timestamp {entry.ns} ignored, reason: 'entry too far behind'"
                    )
                elif not self.unordered_writes and entry.ns < newest:
                    problem = (
                        f"entry with timestamp {entry.ns} ignored, reason: 'entry out of order'"
                    )
            if problem is not None:
                problems.append(problem)
                continue
            if (entry.ns, entry.line) in held:
                self.duplicates += 1
                continue
            held.add((entry.ns, entry.line))
            self._newest[key] = max(newest or entry.ns, entry.ns)
            kept.append(entry)
        return kept

    def accept_otlp(self, request: ExportLogsServiceRequest, headers: dict[str, str]) -> None:
        """Judge the request like Loki's OTLP endpoint (see module doc): keep what it stores."""
        for key in otlp_keys(request):
            try:
                normalize_name(key)
            except Rejected as error:
                raise Rejected(400, str(error)) from None
        kept = ExportLogsServiceRequest()
        kept.CopyFrom(request)
        problems: list[str] = []
        for rl in kept.resource_logs:
            problem = otlp_label_problem(rl)
            for sl in rl.scope_logs:
                keep = []
                for record in sl.log_records:
                    why = problem or otlp_record_problem(rl, sl, record)
                    if why is None:
                        keep.append(record)
                    else:
                        problems.append(why)
                del sl.log_records[:]
                sl.log_records.extend(keep)
        with self.lock:
            self.ignored += problems
            self.otlp.append(OtlpLogsPush(kept, headers, time.monotonic()))
        if problems:
            raise Rejected(400, "\n".join(problems[:10]))
