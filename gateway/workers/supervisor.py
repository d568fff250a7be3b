"""The supervisor: starts ``service.workers`` worker processes on the shared OTLP ports, runs
the central gateway (:mod:`gateway.workers.central`) on what they relay, restarts a worker that
dies (with backoff, counted) and stops or reloads them all.

SIGTERM (or Ctrl-C) stops every worker the way one process stops (receivers first, queues
drained for ``service.shutdown_timeout``), reads what they relayed to the end, then stops the
central gateway, draining its queues. SIGHUP and ``POST /-/reload`` reload the supervisor's
configuration and, when a section the workers run changed, replace the workers one at a time
with processes given the new configuration: the new one shares the ports before the old one
stops and drains (with a disk spool, the old one stops first: a partition has one writer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from exporters.spool import spool_directory
from gateway.config.model import Config
from gateway.reload import ReloadOutcome
from gateway.workers.central import CentralGateway
from gateway.workers.endpoints import Endpoints, reserve, with_endpoints
from gateway.workers.link import (
    AUDIT,
    BATCH,
    CONFIG,
    HEALTH,
    LOG,
    NEEDS,
    STATUS,
    decode_batch,
    load_object,
    read_frames,
    socket_pair,
    write_object,
)  # fmt: skip
from gateway.workers.relay import replay_log
from gateway.workers.roles import worker_changes, worker_exporters
from gateway.workers.status import WorkerSlot, WorkerStatus

log = logging.getLogger("otelgate.supervisor")
START_TIMEOUT = 60.0  # seconds for a worker to report running
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0  # restart delays: doubled per quick failure
STABLE_AFTER = 30.0  # a worker that ran this long resets the backoff
STOP_GRACE = 15.0  # seconds past shutdown_timeout before a worker is killed
_AUDIT_NOTES = frozenset({"note_auth_failure", "note_token_use"})


@dataclass(eq=False)
class _Process:
    slot: WorkerSlot
    proc: asyncio.subprocess.Process
    link: asyncio.StreamWriter  # our end; the worker sees EOF when it closes
    expected_exit: bool = False  # a trial or a replaced process: its exit is no crash
    started: float = field(default_factory=time.monotonic)


class Supervisor:
    """N worker processes and the central gateway of one configuration."""

    def __init__(
        self, config: Config, count: int, reload_config: Callable[[], Config] | None = None
    ) -> None:
        self.config = config  # what the workers run (their endpoints: self.endpoints)
        self.count = count
        self.slots = [WorkerSlot(index) for index in range(count)]
        self.gateway = CentralGateway(config, lambda: self.slots, reload_config=reload_config)
        if self.gateway.reloader is not None:
            self.gateway.reloader.on_reloaded = self._reloaded
        self.endpoints: Endpoints = {}
        self._held: list[socket.socket] = []
        self._current: dict[int, _Process] = {}
        self._alive: set[_Process] = set()
        self._tasks: set[asyncio.Task[None]] = set()  # readers and watchers
        self._readers: set[asyncio.Task[None]] = set()
        self._failures = [0] * count
        self._starting = True
        self._start_error: str | None = None
        self.stopping = False
        self._lock = asyncio.Lock()  # spawning into a slot: restarts and reloads

    async def start(self) -> None:
        """Reserve the ports, start the central gateway, then every worker (OSError when a
        port is taken or a worker cannot start)."""
        self.endpoints, self._held = reserve(self.config)
        await self.gateway.start()
        async with self._lock:
            for slot in self.slots:
                await self._spawn(slot)
        deadline = time.monotonic() + START_TIMEOUT
        while any(s.state != "running" for s in self.slots):
            if self._start_error is not None:
                raise OSError(self._start_error)
            if time.monotonic() > deadline:
                raise OSError(f"workers did not start within {START_TIMEOUT:.0f}s")
            await asyncio.sleep(0.05)
        self._starting = False
        listening = [e for ends in self.endpoints.values() for e in ends.values()]
        log.info("otelgate running: %d workers on %s; admin on %s", self.count,
                 ", ".join(listening), self.config.admin.endpoint)  # fmt: skip

    def _task(self, coro: Any, readers: bool = False) -> None:
        task = asyncio.create_task(coro)
        for group in (self._tasks, self._readers) if readers else (self._tasks,):
            group.add(task)
            task.add_done_callback(group.discard)

    async def _spawn(self, slot: WorkerSlot, expected_exit: bool = False) -> _Process:
        """Start a process in ``slot`` (call with the lock held); OSError when it cannot."""
        if self.stopping:
            raise OSError("the gateway is stopping")
        ours, theirs = socket_pair()
        env = dict(os.environ)
        env.update(
            OTELGATE_WORKER_INDEX=str(slot.index),
            OTELGATE_WORKER_COUNT=str(self.count),
            OTELGATE_WORKER_LINK_FD=str(theirs.fileno()),
        )
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway.workers.worker", env=env,
                pass_fds=(theirs.fileno(),),
            )  # fmt: skip
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        # Service health is merged into the supervisor's tracker: the same buckets, always.
        health = {"health": self.gateway.config.health}
        config = with_endpoints(self.config, self.endpoints).model_copy(update=health)
        write_object(writer, CONFIG, config)
        write_object(writer, NEEDS, self.gateway.relay_needs())
        process = _Process(slot, proc, writer, expected_exit)
        slot.pid, slot.state, slot.started_at = proc.pid, "starting", time.time()
        slot.last_status = slot.last_status_at = None
        self._current[slot.index] = process
        self._alive.add(process)
        self._task(self._read(process, reader), readers=True)
        self._task(self._watch(process))
        return process

    async def _read(self, process: _Process, reader: asyncio.StreamReader) -> None:
        """Everything the worker sends, until it closes its end (it exited)."""
        try:
            async for kind, payload in read_frames(reader):
                try:
                    await self._frame(process, kind, payload)
                except Exception:
                    log.exception("worker %d: cannot handle a frame", process.slot.index)
        finally:
            process.link.close()
            self.gateway.merged_metrics.retire(process.proc.pid)

    async def _frame(self, process: _Process, kind: int, payload: bytes) -> None:
        if kind == BATCH:
            receiver, batch, flags = decode_batch(payload)
            await self.gateway.relay_in(receiver, batch, flags)
        elif kind == STATUS:
            self._status(process, load_object(payload))
        elif kind == AUDIT:
            method, args = load_object(payload)
            if self.gateway.audit is not None and method in _AUDIT_NOTES:
                getattr(self.gateway.audit, method)(*args)
        elif kind == HEALTH:
            self.gateway.health.merge(load_object(payload))
        elif kind == LOG:
            replay_log(load_object(payload))

    def _status(self, process: _Process, status: WorkerStatus) -> None:
        self.gateway.merged_metrics.note(status)  # a replaced process draining counts too
        slot = process.slot
        if self._current.get(slot.index) is not process:
            return  # its slot shows the process that replaced it
        slot.last_status, slot.last_status_at = status, time.time()
        if status.state == "running" and slot.state == "starting":
            slot.state = "running"

    async def _watch(self, process: _Process) -> None:
        """Restart the slot's worker when its process exits unasked."""
        code = await process.proc.wait()
        self._alive.discard(process)
        slot = process.slot
        if process.expected_exit or self.stopping or self._current.get(slot.index) is not process:
            return
        slot.state, slot.pid = "restarting", None
        if self._starting:
            self._start_error = f"worker {slot.index} exited during start-up (exit code {code})"
            return
        if time.monotonic() - process.started > STABLE_AFTER:
            self._failures[slot.index] = 0
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** self._failures[slot.index])
        self._failures[slot.index] += 1
        log.error("worker %d (pid %d) exited with code %s; restarting it in %.1fs",
                  slot.index, process.proc.pid, code, delay)  # fmt: skip
        while True:
            await asyncio.sleep(delay)
            async with self._lock:
                if self.stopping or self._current.get(slot.index) is not process:
                    return
                try:
                    await self._spawn(slot)
                except OSError as exc:
                    log.error("cannot restart worker %d: %s", slot.index, exc)
                else:
                    slot.restarts += 1
                    return
            delay = min(BACKOFF_MAX, delay * 2)

    async def _reloaded(self, outcome: ReloadOutcome) -> None:
        """After a successful reload: replace the workers when their part changed."""
        for process in list(self._alive):  # alert rules on logs may have come or gone
            write_object(process.link, NEEDS, self.gateway.relay_needs())
        new = outcome.config
        if new is None:
            return
        changed = worker_changes(self.config, new)
        if not changed:
            return
        error = await self.roll(new)
        if error is None:
            outcome.applied.append(f"workers ({', '.join(changed)}: replaced one at a time)")
            # What the supervisor runs itself (its pipelines, the store) still needs a restart.
            outcome.restart_needed = [
                f"{s} (the supervisor's part)" if s in changed else s
                for s in outcome.restart_needed
            ]
        else:
            outcome.ok = False
            outcome.errors.append(error)

    async def roll(self, config: Config) -> str | None:
        """Replace every worker by a process running ``config``, one at a time; the error
        (the running workers kept) when a new one does not start."""
        async with self._lock:
            previous, self.config = self.config, config
            # A spool partition has one writer: the old process stops before the new starts.
            spooled = any(
                spool_directory(name, cfg.exporters[name]) is not None
                for cfg in (previous, config)
                for name in worker_exporters(cfg)
                if name in cfg.exporters
            )
            for slot in self.slots:
                old = self._current.get(slot.index)
                if spooled and old is not None:
                    await self._retire(old)
                try:
                    new = await self._spawn(slot, expected_exit=True)
                    started = await self._until_running(new)
                except OSError as exc:
                    new, started = None, False
                    log.error("worker %d: %s", slot.index, exc)
                if started and new is not None:
                    new.expected_exit = False
                    if not spooled and old is not None:
                        await self._retire(old, wait=False)
                    continue
                if new is not None:
                    with contextlib.suppress(ProcessLookupError):
                        new.proc.kill()
                self.config = previous
                error = (
                    f"worker {slot.index} did not start with the new configuration; "
                    f"workers before it run the new one, the others the old one"
                )
                if old is not None and old.proc.returncode is None and not spooled:
                    self._current[slot.index] = old
                    slot.pid, slot.state = old.proc.pid, "running"
                elif not self.stopping:
                    await self._spawn(slot)  # the slot's old process is gone: the old config
                return (
                    error
                    if slot.index
                    else (
                        "the first worker did not start with the new configuration; "
                        "the workers keep the old one"
                    )
                )
            log.info("workers replaced with the new configuration")
            return None

    async def _retire(self, process: _Process, wait: bool = True) -> None:
        """Stop ``process`` (it drains); with ``wait``, until it exited."""
        process.expected_exit = True
        if process.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.proc.send_signal(signal.SIGTERM)
        if wait:
            limit = self.config.service.shutdown_timeout + STOP_GRACE
            try:
                await asyncio.wait_for(process.proc.wait(), limit)
            except TimeoutError:
                process.proc.kill()
                await process.proc.wait()

    async def _until_running(self, process: _Process) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while process.slot.state != "running":
            if process.proc.returncode is not None or time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    def signal_workers(self, sig: signal.Signals) -> None:
        """Send ``sig`` to every live worker process."""
        for process in list(self._alive):
            if process.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.proc.send_signal(sig)

    async def stop(self, drain_timeout: float | None = None) -> None:
        """Stop every worker (they drain), read their relay to the end, then the gateway."""
        timeout = self.config.service.shutdown_timeout if drain_timeout is None else drain_timeout
        self.stopping = True
        for slot in self.slots:
            slot.state = "stopping"
        self.signal_workers(signal.SIGTERM)
        waits = [asyncio.create_task(p.proc.wait()) for p in list(self._alive)]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=timeout + STOP_GRACE)
            if pending:
                log.error("%d worker(s) did not stop in time: killing them", len(pending))
                self.signal_workers(signal.SIGKILL)
                await asyncio.wait(waits, timeout=5.0)
        if self._readers:  # what they relayed before exiting is still in the sockets
            _, unread = await asyncio.wait(set(self._readers), timeout=timeout + STOP_GRACE)
            if unread:
                log.error("gave up reading what %d worker(s) relayed", len(unread))
        for task in list(self._tasks):
            task.cancel()
        for slot in self.slots:
            slot.state, slot.pid = "stopped", None
        await self.gateway.stop(drain_timeout)
        for sock in self._held:
            sock.close()


async def serve_supervised(
    config: Config, count: int, reload_config: Callable[[], Config] | None = None
) -> int:
    """``otelgate run`` with ``count`` workers, until SIGTERM or SIGINT."""
    supervisor = Supervisor(config, count, reload_config)
    stop = asyncio.Event()
    hurry = asyncio.Event()
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[Any]] = set()

    def on_stop(sig: signal.Signals) -> None:
        if stop.is_set():
            if sig is signal.SIGINT:
                hurry.set()
            return
        log.info("received %s: stopping %d workers", sig.name, count)
        stop.set()

    def on_hangup() -> None:
        reloader = supervisor.gateway.reloader
        if reloader is not None:
            log.info("received SIGHUP: reloading the configuration")
            task = asyncio.create_task(reloader.reload())
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    loop.add_signal_handler(signal.SIGTERM, on_stop, signal.SIGTERM)
    loop.add_signal_handler(signal.SIGINT, on_stop, signal.SIGINT)
    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    try:
        await supervisor.start()
    except OSError as exc:
        log.error("%s", exc)
        await supervisor.stop(drain_timeout=0.0)
        return 1
    await stop.wait()
    stopping = asyncio.create_task(supervisor.stop())
    hurried = asyncio.create_task(hurry.wait())
    done, _ = await asyncio.wait({stopping, hurried}, return_when=asyncio.FIRST_COMPLETED)
    if stopping not in done:
        log.warning("second Ctrl-C: stopping without waiting for the exporter queues")
        supervisor.signal_workers(signal.SIGINT)
        await supervisor.gateway.stop(drain_timeout=0.0)
        await stopping
        return 130
    hurried.cancel()
    return 0
