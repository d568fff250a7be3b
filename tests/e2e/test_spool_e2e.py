"""The disk spool with the real gateway process: kill -9 and restart lose nothing, damaged
spool files are quarantined at start-up, a long outage does not grow the gateway's memory, and a
full disk (a real 1 MiB tmpfs, where the machine allows mounting one) is refused with 503 and
reported until space returns.

Counts are printed (run pytest with -s to see them).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from gateway.otlp.batch import Signal
from tests.e2e.conftest import forward_config
from tests.factories import logs_request, traces_request
from tests.support.gateway_process import GatewayProcess
from tests.support.otlp_sink import OtlpSink

EXPORTER = "otlp/sink"


def spool_config(sink: OtlpSink, directory: Path, **queue: Any) -> dict[str, Any]:
    return forward_config(
        sink, sending_queue={"storage": "disk", "directory": str(directory), **queue}
    )


def down_sink() -> tuple[OtlpSink, tuple[int, int]]:
    """A sink that is not running, and the ports it will come up on."""
    sink = OtlpSink().start()
    ports = (sink.grpc_port, sink.http_port)
    sink.stop()
    return sink, ports


def post_traces(client: httpx.Client, gateway: GatewayProcess, spans: int) -> tuple[int, set]:
    request = traces_request(spans)
    ids = {s.span_id for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans}
    response = client.post(
        f"{gateway.http_endpoint}/v1/traces",
        content=request.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    return response.status_code, ids


def tally(sent: set[bytes], sink: OtlpSink) -> tuple[list[bytes], int, int]:
    delivered = [s.span_id for s in sink.spans()]
    lost = len(sent - set(delivered))
    duplicates = sum(n - 1 for n in Counter(delivered).values())
    return delivered, lost, duplicates


def test_kill_9_with_the_backend_down_then_restart_delivers_everything(
    start_gateway, tmp_path: Path
) -> None:
    sink, ports = down_sink()
    config = spool_config(sink, tmp_path / "spool")
    first = start_gateway(config)
    sent: set[bytes] = set()
    with httpx.Client(timeout=10) as client:
        for _ in range(30):
            status, ids = post_traces(client, first, 20)
            assert status == 200
            sent |= ids
    assert first.metric("otelgate_exporter_queue_size", exporter=EXPORTER) == 600
    assert first.metric("otelgate_exporter_spool_bytes", exporter=EXPORTER) > 0
    first.kill()  # SIGKILL: no drain, no goodbye

    sink = OtlpSink(*ports).start()
    try:
        second = start_gateway(config)
        sink.wait_for(lambda s: len(s.spans()) >= len(sent), 30)
        time.sleep(1.0)  # anything sent twice would show up now
        delivered, lost, duplicates = tally(sent, sink)
        print(
            f"\n[kill -9, backend down] sent={len(sent)} delivered={len(delivered)} "
            f"lost={lost} duplicates={duplicates}"
        )
        assert lost == 0, second.logs()
        assert duplicates == 0  # nothing was delivered before the kill
        recovered = second.metric(
            "otelgate_exporter_spool_recovered_items_total", exporter=EXPORTER, signal="traces"
        )
        assert recovered == 600
        assert "600 undelivered item(s)" in second.logs()
        deadline = time.monotonic() + 10
        while second.metric("otelgate_exporter_queue_size", exporter=EXPORTER) != 0:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        sink.stop()


def test_kill_9_while_traffic_flows_loses_nothing(sink, start_gateway, tmp_path: Path) -> None:
    sink.delay = 0.05  # a backend slower than the clients: the spool holds a backlog
    config = spool_config(sink, tmp_path / "spool", num_consumers=2)
    first = start_gateway(config)
    sent: set[bytes] = set()
    failed_requests = 0

    def send() -> None:
        nonlocal failed_requests
        with httpx.Client(timeout=5) as client:
            for _ in range(5000):  # bounded; the kill ends it much sooner
                try:
                    status, ids = post_traces(client, first, 10)
                except httpx.HTTPError:  # the gateway died under this request: not accepted
                    failed_requests += 1
                    if first.proc is not None and first.proc.poll() is not None:
                        return
                    continue
                if status == 200:
                    sent.update(ids)
                else:
                    failed_requests += 1

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    time.sleep(3.0)
    first.kill()
    sender.join(15)
    assert not sender.is_alive()
    delivered_before = len({s.span_id for s in sink.spans()})
    backlog = len(sent - {s.span_id for s in sink.spans()})
    assert delivered_before > 0 and backlog > 0, "the kill should hit a flowing backlog"

    sink.delay = 0.0
    second = start_gateway(config)
    sink.wait_for(lambda s: not sent - {x.span_id for x in s.spans()}, 30)
    time.sleep(1.0)  # anything sent twice would show up now
    delivered, lost, duplicates = tally(sent, sink)
    print(
        f"\n[kill -9, traffic flowing] sent={len(sent)} delivered={len(set(delivered))} "
        f"lost={lost} duplicates={duplicates} (backlog at the kill: {backlog}, "
        f"requests failed by the kill: {failed_requests})"
    )
    assert lost == 0, second.logs()


def flip_bytes_at(path: Path, needle: bytes) -> None:
    """Damage ``path`` where ``needle`` (bytes of one request) is stored, as a bad disk would."""
    data = bytearray(path.read_bytes())
    at = data.find(needle)
    assert at >= 0
    data[at : at + len(needle)] = bytes(b ^ 0x5A for b in needle)
    path.write_bytes(bytes(data))


def test_damaged_spool_files_are_quarantined_and_the_rest_delivered(
    start_gateway, tmp_path: Path
) -> None:
    sink, ports = down_sink()
    directory = tmp_path / "spool"
    config = spool_config(sink, directory)
    first = start_gateway(config)
    batches: list[set[bytes]] = []
    with httpx.Client(timeout=10) as client:
        for _ in range(10):
            status, ids = post_traces(client, first, 5)
            assert status == 200
            batches.append(ids)
    first.kill()

    [segment] = sorted(directory.glob("*.seg"))
    flip_bytes_at(segment, sorted(batches[4])[0])  # one span id inside the 5th request
    garbage = directory / f"{10**9:020d}.seg"
    garbage.write_bytes(os.urandom(4096))  # a file that was never a spool segment

    sink = OtlpSink(*ports).start()
    try:
        second = start_gateway(config)
        expected = set().union(*batches[:4], *batches[5:])
        sink.wait_for(lambda s: len(s.spans()) >= len(expected), 30)
        time.sleep(1.0)
        delivered = [s.span_id for s in sink.spans()]
        quarantined = sorted(p.name for p in (directory / "quarantine").glob("*.seg"))
        metric = second.metric("otelgate_exporter_spool_quarantined_files_total", exporter=EXPORTER)
        print(
            f"\n[damaged spool] sent={sum(map(len, batches))} delivered={len(delivered)} "
            f"lost_to_damage={len(batches[4])} quarantined={quarantined} metric={metric:.0f}"
        )
        assert sorted(delivered) == sorted(expected)  # the intact records, once each
        assert quarantined == sorted([segment.name, garbage.name])
        assert metric == 2
        assert second.metric("otelgate_exporter_spool_corrupt_bytes_total", exporter=EXPORTER) > 0
        logs = second.logs()
        assert "quarantined 2 damaged spool file(s)" in logs
        assert "is damaged" in logs
    finally:
        sink.stop()


def big_logs_body(request_bytes: int) -> bytes:
    request = logs_request(8)
    body = os.urandom(request_bytes // 16).hex()
    for record in request.resource_logs[0].scope_logs[0].log_records:
        record.body.string_value = body
    return request.SerializeToString()


def test_long_outage_spools_to_disk_not_memory(start_gateway, tmp_path: Path) -> None:
    sink, ports = down_sink()
    config = spool_config(sink, tmp_path / "spool")
    gateway = start_gateway(config)
    assert gateway.proc is not None
    process = psutil.Process(gateway.proc.pid)
    body = big_logs_body(256 * 1024)
    accepted_items = 0
    baseline_rss = 0
    started = time.monotonic()
    with httpx.Client(timeout=10) as client:
        for n in range(2000):  # ~4 MB/s for 20 s, longer (60 s at most) until 60 MB are sent
            elapsed = time.monotonic() - started
            if elapsed > 60 or (elapsed > 20 and n * len(body) > 60e6):
                break
            response = client.post(
                f"{gateway.http_endpoint}/v1/logs",
                content=body,
                headers={"Content-Type": "application/x-protobuf"},
            )
            assert response.status_code == 200
            accepted_items += 8
            if n == 20:  # after warm-up: buffers, caches and allocator arenas exist
                baseline_rss = process.memory_info().rss
            time.sleep(max(0.0, (n + 1) * 0.06 - (time.monotonic() - started)))
    final_rss = process.memory_info().rss
    spooled = gateway.metric("otelgate_exporter_spool_bytes", exporter=EXPORTER)
    queued = gateway.metric("otelgate_exporter_queue_size", exporter=EXPORTER)
    growth = final_rss - baseline_rss
    print(
        f"\n[long outage] sent={accepted_items} log records, spooled={spooled / 1e6:.1f}MB, "
        f"rss {baseline_rss / 1e6:.1f}MB -> {final_rss / 1e6:.1f}MB "
        f"(growth {growth / 1e6:.1f}MB, {100 * growth / spooled:.1f}% of the spool)"
    )
    assert spooled >= 50e6
    assert queued == accepted_items
    assert growth < 0.2 * spooled

    sink = OtlpSink(*ports).start()  # the backend is back: the spool drains
    try:
        sink.wait_for(lambda s: s.item_count(Signal.LOGS) >= accepted_items, 120)
        assert sink.item_count(Signal.LOGS) == accepted_items
        assert gateway.stop() == 0
        with contextlib.suppress(FileNotFoundError):
            left = sum(p.stat().st_size for p in (tmp_path / "spool").glob("*.seg"))
            print(f"[long outage] spool files left after draining: {left / 1e6:.1f}MB")
    finally:
        sink.stop()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB tmpfs (needs root or CAP_SYS_ADMIN; skipped where mounting is refused)."""
    mountpoint = tmp_path / "small-disk"
    mountpoint.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command here")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mountpoint)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def logs_with_ids(request_bytes: int) -> tuple[bytes, set[bytes]]:
    """An OTLP logs request of about ``request_bytes`` and the trace ids of its 4 records."""
    request = logs_request(4)
    body = os.urandom(request_bytes // 8).hex()
    records = request.resource_logs[0].scope_logs[0].log_records
    for record in records:
        record.body.string_value = body
    return request.SerializeToString(), {r.trace_id for r in records}


def test_a_full_disk_refuses_with_503_says_why_and_resumes_when_space_returns(
    small_disk: Path, start_gateway, tmp_path: Path
) -> None:
    sink, ports = down_sink()
    gateway = start_gateway(spool_config(sink, small_disk / "spool"))
    assert gateway.proc is not None
    accepted: set[bytes] = set()
    with httpx.Client(timeout=10) as client:

        def post() -> tuple[httpx.Response, set[bytes]]:
            body, ids = logs_with_ids(32 * 1024)
            response = client.post(
                f"{gateway.http_endpoint}/v1/logs",
                content=body,
                headers={"Content-Type": "application/x-protobuf"},
            )
            return response, ids

        for _ in range(100):  # the backend is down: the spool fills the 1 MiB disk
            response, ids = post()
            if response.status_code != 200:
                break
            accepted |= ids
        full = shutil.disk_usage(small_disk)
        assert response.status_code == 503 and int(response.headers["Retry-After"]) >= 1
        ready = client.get(f"{gateway.admin_url}/health/ready")
        assert ready.status_code == 503 and "No space left on device" in ready.text
        [exporter] = client.get(f"{gateway.admin_url}/health").json()["exporters"]
        assert "No space left on device" in exporter["spool_error"]

        sink = OtlpSink(*ports).start()  # the backend is back: the spool drains, space returns
        try:
            deadline = time.monotonic() + 30
            while client.get(f"{gateway.admin_url}/health/ready").status_code != 200:
                assert time.monotonic() < deadline, gateway.logs()
                time.sleep(0.2)
            drained = shutil.disk_usage(small_disk)
            held = [
                os.readlink(fd)
                for fd in Path(f"/proc/{gateway.proc.pid}/fd").iterdir()
                if os.readlink(fd).startswith(str(small_disk))
            ]
            response, ids = post()
            assert response.status_code == 200
            accepted |= ids
            sink.wait_for(lambda s: {r.trace_id for r in s.log_records()} >= accepted, 30)
            delivered = [r.trace_id for r in sink.log_records()]
            print(
                f"\n[full disk] accepted={len(accepted)} log records, disk used "
                f"{full.used / 1e6:.2f}MB when full -> {drained.used / 1e6:.2f}MB after the "
                f"drain, delivered={len(delivered)} files held={held}"
            )
            assert sorted(delivered) == sorted(accepted)  # nothing lost, nothing twice
            assert not [target for target in held if target.endswith("(deleted)")]
            assert drained.used < full.used / 2
        finally:
            sink.stop()
