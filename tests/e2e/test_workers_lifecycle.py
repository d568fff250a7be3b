"""Worker processes of ``service.workers: 2`` die, stop and reload without losing data: kill -9
of a worker under load (the supervisor restarts it; everything an SDK client was told was
accepted reaches the backend), SIGTERM of the supervisor (every worker drains its queue) and
SIGHUP (every worker is replaced by one running the new configuration).

The clients are real OpenTelemetry SDK exporters, a fresh one (a fresh connection) for every
few spans, alternating OTLP/HTTP and OTLP/gRPC; the backend is the test OTLP sink. Counts are
printed (run pytest with -s to see them).
"""

from __future__ import annotations

import copy
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from gateway.otlp.batch import Signal
from tests.e2e.conftest import forward_config
from tests.support.otlp_sink import OtlpSink
from tests.support.workers import WorkersGateway, accepted_items, span_exporter, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

#: gRPC codes the SDK's exporter retries (opentelemetry-exporter-otlp-proto-grpc 1.45).
RETRYABLE_GRPC = ("UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED", "ABORTED")


def workers_config(sink: OtlpSink, **exporter: Any) -> dict[str, Any]:
    config = forward_config(sink, **exporter)
    config["service"].update(workers=2, shutdown_timeout="10s")
    return config


class Recording(SpanExporter):
    """An SDK exporter that remembers the span ids of every export that succeeded."""

    def __init__(self, inner: SpanExporter, load: Load) -> None:
        self.inner = inner
        self.load = load

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.inner.export(spans)
        with self.load.lock:
            if result is SpanExportResult.SUCCESS:
                self.load.accepted.update(s.context.span_id for s in spans)
            else:
                self.load.failed_exports += 1
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()


class Load:
    """SDK clients sending spans to ``gateway``: ``send`` once, or ``run`` in threads."""

    def __init__(self, gateway: WorkersGateway, service: str = "load") -> None:
        self.gateway = gateway
        self.resource = Resource.create({"service.name": service})
        self.lock = threading.Lock()
        self.accepted: set[int] = set()
        self.failed_exports = 0
        self.clients = 0
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.messages: list[logging.LogRecord] = []
        self._handler = _Collect(self.messages)

    def send(self, spans: int = 5) -> None:
        """One short-lived client: ``spans`` spans, then shut down (gRPC every other time)."""
        with self.lock:
            self.clients += 1
            grpc = self.clients % 2 == 0
        exporter = Recording(span_exporter(self.gateway, grpc), self)
        provider = TracerProvider(resource=self.resource)
        provider.add_span_processor(BatchSpanProcessor(exporter))
        tracer = provider.get_tracer("e2e.workers")
        for _ in range(spans):
            tracer.start_span("GET /load", kind=SpanKind.SERVER).end()
        provider.shutdown()

    def __enter__(self) -> Load:
        logging.getLogger("opentelemetry.exporter").addHandler(self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.finish()
        finally:
            logging.getLogger("opentelemetry.exporter").removeHandler(self._handler)

    def run(self, threads: int = 3, limit: int = 3000) -> None:
        """Send from ``threads`` threads until :meth:`finish` (at most ``limit`` clients each)."""

        def loop() -> None:
            for _ in range(limit):
                if self.stop.is_set():
                    return
                self.send()

        for i in range(threads):
            thread = threading.Thread(target=loop, name=f"load-{i}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)
        assert not any(t.is_alive() for t in self.threads), "a client hung"

    def not_retryable(self) -> list[str]:
        """Export failures the SDK logged that a retry could not have fixed."""
        found = []
        for record in self.messages:
            text = record.getMessage()
            if record.levelno < logging.ERROR or "timeout, max retries or shutdown" in text:
                continue
            if "error code: StatusCode." in text and any(c in text for c in RETRYABLE_GRPC):
                continue
            if "batch code: None" in text:  # no HTTP answer: the connection broke
                continue
            found.append(text)
        return found

    def summary(self) -> str:
        retried = [r.getMessage() for r in self.messages if "Transient error" in r.getMessage()]
        why = sorted({text.split(" encountered")[0][:100] for text in retried})
        return (
            f"clients={self.clients} accepted spans={len(self.accepted)} "
            f"failed exports={self.failed_exports} retries logged by the SDK={len(retried)} "
            f"{why}"
        )


class _Collect(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record)


def span_id(span: Any) -> int:
    return int.from_bytes(span.span_id, "big")


def missing(sink: OtlpSink, accepted: set[int]) -> set[int]:
    return accepted - {span_id(s) for s in sink.spans()}


def traces_of(gateway: WorkersGateway) -> list[int]:
    """Spans each worker slot's current process has accepted (as of its last report)."""
    return [s["accepted_items"].get("traces", 0) for s in gateway.slots()]


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie counts as ended)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_kill_9_of_a_worker_under_load_loses_no_accepted_span(
    sink: OtlpSink, launch: Callable[..., WorkersGateway], tmp_path: Path
) -> None:
    sink.delay = 0.02  # a backlog in the workers' spools when the kill comes
    spool = {"storage": "disk", "directory": str(tmp_path / "spool")}
    gateway = launch(workers_config(sink, sending_queue=spool))
    [victim, other] = gateway.slots()
    with Load(gateway) as load:
        load.run()
        assert wait_until(lambda: all(traces_of(gateway)), 15)
        counts = [accepted_items(gateway)["traces"]]  # merged over the processes
        os.kill(victim["pid"], signal.SIGKILL)
        killed_at = time.monotonic()

        def restarted() -> dict[str, Any] | None:
            counts.append(accepted_items(gateway)["traces"])
            slot = gateway.slots()[0]
            new = slot["pid"] not in (None, victim["pid"])
            return slot if new and slot["state"] == "running" and slot["last_report_at"] else None

        slot = wait_until(restarted, 20)
        assert slot, f"worker 0 not restarted:\n{gateway.slots()}\n{gateway.logs()}"
        print(f"\nworker 0 back after {time.monotonic() - killed_at:.1f}s: pid {slot['pid']}")
        # The new process takes its share of the connections too.
        assert wait_until(lambda: traces_of(gateway)[0], 15)
        load.finish()
        print(f"[kill -9 under load] {load.summary()}")
        assert load.accepted and not load.not_retryable(), load.not_retryable()

    assert counts == sorted(counts), counts  # the dead worker's counts are kept, not reset
    assert f"worker 0 (pid {victim['pid']}) exited with code -9" in gateway.logs()
    slots = gateway.slots()
    assert [s["restarts"] for s in slots] == [1, 0]
    assert slots[1]["pid"] == other["pid"] and gone(victim["pid"])
    assert gateway.health()["workers"]["restarts"] == 1
    assert gateway.metric("otelgate_worker_restarts_total", worker="0") == 1
    assert (tmp_path / "spool" / "worker-0").is_dir()
    sink.delay = 0.0
    sink.wait_for(lambda s: not missing(s, load.accepted), 30)
    lost = missing(sink, load.accepted)
    received = [span_id(s) for s in sink.spans()]
    print(f"delivered={len(set(received))} duplicates={len(received) - len(set(received))} "
          f"lost={len(lost)}")  # fmt: skip
    assert not lost, gateway.logs()[-5000:]


def test_sigterm_drains_every_worker(launch: Callable[..., WorkersGateway]) -> None:
    sink = OtlpSink().start()  # only for its ports: the backend is down while clients send
    sink.stop()
    ports = (sink.grpc_port, sink.http_port)
    gateway = launch(workers_config(sink))
    with Load(gateway) as load:
        for _ in range(40):
            load.send()
    assert load.failed_exports == 0, load.summary()
    print(f"\n[SIGTERM drain] {load.summary()}")

    def held_by_each_worker() -> list[int] | None:
        [exporter] = [e for e in gateway.health()["exporters"] if e["name"] == "otlp/sink"]
        sizes = {p["process"]: p["queue_size"] for p in exporter["workers"]}
        held = [sizes.get("worker-0", 0), sizes.get("worker-1", 0)]
        return held if all(held) and sum(held) == len(load.accepted) else None

    held = wait_until(held_by_each_worker, 10)
    assert held, gateway.health()["exporters"]
    pids = [s["pid"] for s in gateway.slots()]
    print(f"queued per worker: {held}; worker pids {pids}")

    assert gateway.proc is not None
    gateway.proc.send_signal(signal.SIGTERM)
    time.sleep(1.0)  # the workers are draining into a backend that is still down
    assert gateway.proc.poll() is None
    sink = OtlpSink(*ports).start()
    try:
        started = time.monotonic()
        code = gateway.proc.wait(25)
        print(f"supervisor exited {code} {time.monotonic() - started:.1f}s after the sink came up")
        assert code == 0, gateway.logs()
        assert all(gone(pid) for pid in pids)
        assert not missing(sink, load.accepted), gateway.logs()
        assert "dropped" not in gateway.logs()
    finally:
        sink.stop()


def test_sighup_replaces_every_worker_with_the_new_config(
    sink: OtlpSink, launch: Callable[..., WorkersGateway]
) -> None:
    gateway = launch(workers_config(sink))
    before = [s["pid"] for s in gateway.slots()]
    config = copy.deepcopy(gateway.config)  # with the receivers and admin endpoints it got
    config["processors"] = {
        "resource": {"attributes": [{"key": "gateway.reloaded", "value": "yes",
                                     "action": "upsert"}]}
    }  # fmt: skip
    config["service"]["pipelines"]["traces"]["processors"] = ["resource"]
    gateway.config_path.write_text(yaml.safe_dump(config))
    assert gateway.proc is not None
    with Load(gateway, "during-reload") as rolling:  # clients send while workers are replaced
        rolling.run(threads=2)
        time.sleep(0.5)
        gateway.proc.send_signal(signal.SIGHUP)
        started = time.monotonic()

        def replaced() -> list[int] | None:
            slots = gateway.slots()
            pids = [s["pid"] for s in slots]
            fresh = all(p is not None and p not in before for p in pids)
            return pids if fresh and all(s["state"] == "running" for s in slots) else None

        after = wait_until(replaced, 30)
        assert after, f"{gateway.slots()}\n{gateway.logs()}"
        replacing = "replaced one at a time)"
        assert wait_until(lambda: replacing in gateway.logs(), 10), gateway.logs()
        print(f"\nworkers {before} -> {after} in {time.monotonic() - started:.1f}s")
        assert wait_until(lambda: all(gone(pid) for pid in before), 15)
    quiet = time.time()
    print(f"[during SIGHUP] {rolling.summary()}")
    assert rolling.failed_exports == 0 and not rolling.not_retryable(), rolling.summary()
    assert sink.wait_for(lambda s: not missing(s, rolling.accepted), 15), gateway.logs()

    def reported_since(moment: float) -> list[int] | None:
        """Each worker's accepted spans, once both reported after ``moment``."""
        slots = gateway.slots()
        at = [datetime.fromisoformat(s["last_report_at"]).timestamp() for s in slots]
        return traces_of(gateway) if min(at) > moment else None

    baseline = wait_until(lambda: reported_since(quiet), 10)
    assert baseline is not None
    with Load(gateway) as load:
        for _ in range(40):
            load.send()
    print(f"[after SIGHUP] {load.summary()}")
    assert load.failed_exports == 0
    assert sink.wait_for(lambda s: not missing(s, load.accepted), 15), gateway.logs()

    def per_worker() -> list[int] | None:  # reports come every second
        accepted = [n - b for n, b in zip(traces_of(gateway), baseline, strict=True)]
        return accepted if sum(accepted) == len(load.accepted) else None

    accepted = wait_until(per_worker, 10)
    assert accepted and all(accepted), gateway.slots()  # both new workers took connections
    tagged = {
        span_id(span): {a.key: a.value.string_value for a in rs.resource.attributes}
        for item in sink.received
        if item.signal is Signal.TRACES
        for rs in item.request.resource_spans  # type: ignore[union-attr]
        for ss in rs.scope_spans
        for span in ss.spans
    }
    assert all(tagged[i].get("gateway.reloaded") == "yes" for i in load.accepted)
