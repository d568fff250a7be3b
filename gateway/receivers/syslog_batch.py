"""Gathering syslog log records into OTLP batches, and handing them to the logs pipelines.

Records are grouped by their resource attributes (one ``ResourceLogs`` per sending host and
application) and sent as one ``ExportLogsServiceRequest`` when ``max_records`` or
``max_bytes`` are gathered, or ``timeout`` after the first of them arrived. A batch goes through
the ingest path OTLP requests take (:meth:`gateway.receivers.ingest.Ingest.export`: validated,
routed to every logs pipeline that lists the receiver, counted in
``otelgate_receiver_accepted_items_total``, shown to the observers), one at a time, in order.
Each record is counted once: accepted when the pipelines take it, refused (with the reason)
only when it is given up; the attempts a refused batch is offered again are not counted.

Backpressure. When the pipelines refuse a batch (an exporter queue is full, the gateway is
stopping) it is kept and offered again, with a backoff from 50 ms to 1 s, until they take it;
meanwhile records keep gathering until the receiver's records (the refused batch and the
gathering ones) reach ``max_pending_bytes``. Then :meth:`LogBatcher.add` says why there is no
room: a TCP connection waits (:meth:`LogBatcher.wait_room`) and so stops reading; a UDP
datagram is dropped and counted by the caller. Waiting for room is not a refusal: records that
are delivered in the end are never counted as refused.

Stopping delivers what is pending within the grace period; what the pipelines still refuse
then is counted in ``otelgate_receiver_refused_items_total`` with their reason and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from gateway.errors import RefusedError
from gateway.otlp.batch import Signal
from gateway.receivers.ingest import Ingest

log = logging.getLogger("otelgate.syslog")

SCOPE = "otelgate.syslog"
RECORD_OVERHEAD = 8  # bytes a record adds to a request beyond its own (tag, length)
FIRST_RETRY = 0.05  # seconds before a refused batch is offered again; doubles up to 1 s
MAX_RETRY = 1.0
WARN_EVERY = 60.0  # seconds between two warnings about refused batches


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """When a batch is sent, and how much may wait: sizes in bytes, timeout in seconds."""

    max_records: int
    max_bytes: int
    timeout: float
    max_pending_bytes: int


@dataclass(slots=True)
class _Group:
    resource: Sequence[KeyValue]
    records: list[LogRecord]
    nbytes: int


class LogBatcher:
    """The batches of one transport of a syslog receiver (see the module docstring)."""

    def __init__(self, name: str, ingest: Ingest, limits: BatchLimits) -> None:
        self.name = name  # for log lines: "syslog/udp"
        self.ingest = ingest
        self.limits = limits
        self.blocked: str | None = None  # why the pipelines refused the last attempt
        self._groups: dict[bytes, _Group] = {}
        self._records = 0
        self._bytes = 0  # of the gathering records
        self._sending = 0  # bytes of the batch being delivered
        self._first_at = 0.0  # loop time the oldest gathering record arrived
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._room = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._give_up_at: float | None = None
        self._last_warning = -WARN_EVERY

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` began: :meth:`add` takes nothing more."""
        return self._stopping

    @property
    def pending_bytes(self) -> int:
        """Bytes of the records not yet handed to the pipelines."""
        return self._bytes + self._sending

    def add(self, resource: Sequence[KeyValue], record: LogRecord) -> str | None:
        """Take a record (None), or say why there is no room now: the pipelines' refusal
        reason, ``backpressure`` while a batch is being delivered, ``not_ready`` once stopped."""
        if self._stopping:
            return "not_ready"
        size = record.ByteSize() + RECORD_OVERHEAD
        if self.pending_bytes and self.pending_bytes + size > self.limits.max_pending_bytes:
            self._room.clear()
            return self.blocked or "backpressure"
        key = b"".join(kv.SerializeToString(deterministic=True) for kv in resource)
        group = self._groups.get(key)
        if group is None:
            size += len(key) + RECORD_OVERHEAD
            self._groups[key] = _Group(resource, [record], size)
        else:
            group.records.append(record)
            group.nbytes += size
        if not self._records:
            self._first_at = asyncio.get_running_loop().time()
            self._wake.set()
        self._records += 1
        self._bytes += size
        if self._records >= self.limits.max_records or self._bytes >= self.limits.max_bytes:
            self._full.set()
        return None

    async def wait_room(self, timeout: float = 0.1) -> None:
        """Wait until a batch was delivered (or ``timeout``), then :meth:`add` again."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._room.wait(), timeout)

    async def start(self) -> None:
        self._stopping, self._give_up_at = False, None
        self._task = asyncio.create_task(self._run(), name=f"syslog batches {self.name}")

    async def stop(self, grace: float) -> None:
        """Deliver what is pending within ``grace`` seconds; count the rest as refused."""
        self._stopping = True
        self._give_up_at = asyncio.get_running_loop().time() + grace
        self._wake.set()
        self._full.set()
        task, self._task = self._task, None
        if task is None:
            return
        done, _ = await asyncio.wait({task}, timeout=grace + MAX_RETRY)
        if not done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._records:  # never taken out (the task was cancelled or never ran)
            self._count_lost(self._records, self.blocked or "not_ready")
            self._groups.clear()
            self._records = self._bytes = 0

    async def _run(self) -> None:
        while True:
            if not self._records:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if not self._stopping and not self._full.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(self._first_at + self.limits.timeout):
                        await self._full.wait()
            groups, items, self._sending = self._take()
            try:
                await self._deliver(groups, items)
            except Exception:  # a bug (in a processor, say) must not stop every later batch
                log.exception("receiver %s: delivering %d log record(s) failed", self.name, items)
                self.ingest.refuse(Signal.LOGS, "internal_error", items)
            finally:
                self._sending = 0
                self._room.set()
            await asyncio.sleep(0)

    def _take(self) -> tuple[list[_Group], int, int]:
        """The oldest gathering records, up to ``max_records`` and ``max_bytes`` (at least
        one record), whole groups first."""
        max_records, max_bytes = self.limits.max_records, self.limits.max_bytes
        taken: list[_Group] = []
        items = nbytes = 0
        while self._groups and items < max_records and nbytes < max_bytes:
            key, group = next(iter(self._groups.items()))
            if items + len(group.records) <= max_records and nbytes + group.nbytes <= max_bytes:
                del self._groups[key]
                part = group
            else:  # record by record, as far as the limits go
                count = size = 0
                for record in group.records[: max_records - items]:
                    record_size = record.ByteSize() + RECORD_OVERHEAD
                    if count and nbytes + size + record_size > max_bytes:
                        break
                    count, size = count + 1, size + record_size
                part = _Group(group.resource, group.records[:count], size)
                group.records, group.nbytes = group.records[count:], group.nbytes - size
                if not group.records:
                    del self._groups[key]
            taken.append(part)
            items += len(part.records)
            nbytes += part.nbytes
        self._records -= items
        self._bytes = max(0, self._bytes - nbytes) if self._records else 0
        if self._records < max_records and self._bytes < max_bytes:
            self._full.clear()
        return taken, items, nbytes

    async def _deliver(self, groups: list[_Group], items: int) -> None:
        """Offer the batch until the pipelines take it (or stopping gives up on it)."""
        request = _request(groups)
        nbytes = request.ByteSize()
        delay = FIRST_RETRY
        try:
            while True:
                router = self.ingest.routers.get(Signal.LOGS)
                if router is None:  # no logs pipeline lists the receiver
                    self.ingest.refuse(Signal.LOGS, "no_pipeline", items)
                    return
                try:
                    router.check_room(items, nbytes)
                    try:  # a refusal is counted only when given up (below, or at stop)
                        await self.ingest.export(
                            Signal.LOGS, request, None, nbytes, items, count_refused=False
                        )
                    except RefusedError:  # rare: a spool cannot write, a queue closed
                        request = _request(groups)  # a processor may have changed that one
                        raise
                except RefusedError as exc:
                    self._refused(exc)
                    now = asyncio.get_running_loop().time()
                    if self._give_up_at is not None and now >= self._give_up_at:
                        self._count_lost(items, exc.reason)
                        return
                    await asyncio.sleep(min(delay, exc.retry_after or MAX_RETRY))
                    delay = min(delay * 2, MAX_RETRY)
                    continue
                self.blocked = None
                return
        except asyncio.CancelledError:
            self._count_lost(items, self.blocked or "not_ready")
            raise

    def _refused(self, exc: RefusedError) -> None:
        self.blocked = exc.reason
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY:
            self._last_warning = now
            log.warning("receiver %s: the logs pipelines refuse records (%s); holding them and "
                        "retrying: %s", self.name, exc.reason, exc)  # fmt: skip

    def _count_lost(self, items: int, reason: str) -> None:
        self.ingest.metrics.receiver_refused.labels("logs", self.ingest.transport, reason).inc(
            items
        )
        log.warning("receiver %s: %d log record(s) could not be delivered before the receiver "
                    "stopped (%s)", self.name, items, reason)  # fmt: skip


def _request(groups: list[_Group]) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    scope = InstrumentationScope(name=SCOPE)
    for group in groups:
        resource_logs = request.resource_logs.add()
        resource_logs.resource.attributes.extend(group.resource)
        resource_logs.scope_logs.add(scope=scope, log_records=group.records)
    return request
