"""The processes under test: otelgate and rotel, each pinned to its own core (or unpinned, for
the ``--workers`` comparison), forwarding to the counting sink, in a ``forward`` or a ``full``
configuration; otelgate with ``--workers N`` is a supervisor and N worker processes."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml
from prometheus_client.parser import text_string_to_metric_families

from benchmarks import proctree

TARGET_CORE = "1"
DRIVER_CORE = "0"
ENRICHMENT = {"deployment.environment.name": "bench", "otelgate.gateway": "bench-1"}


def free_port() -> int:
    """A 127.0.0.1 port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rotel_binary() -> str:
    """The ``rotel-agent`` binary the ``rotel`` PyPI package ships."""
    try:
        import rotel
    except ImportError as exc:
        raise SystemExit("rotel is not installed: pip install rotel") from exc
    path = Path(rotel.__file__).with_name("rotel-agent")
    if not path.exists():
        raise SystemExit(f"rotel package has no binary at {path}")
    return str(path)


REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("gateway", "exporters", "instrumentation")


def snapshot_source(dest: Path, attempts: int = 6) -> Path:
    """A copy of otelgate's packages from the working tree, taken once, so every run of a
    benchmark measures the same code while the tree is being edited. Retries while the tree
    does not import (someone is in the middle of a change)."""
    for attempt in range(attempts):
        if dest.exists():
            shutil.rmtree(dest)
        for package in PACKAGES:
            shutil.copytree(REPO / package, dest / package,
                            ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
        check = subprocess.run(
            [sys.executable, "-c", "import gateway.service, gateway.cli"],
            env={**os.environ, "PYTHONPATH": str(dest)}, capture_output=True, text=True,
        )  # fmt: skip
        if check.returncode == 0:
            return dest
        if attempt < attempts - 1:
            print(f"working tree does not import yet, retrying in 15 s:\n{check.stderr[-500:]}")
            time.sleep(15)
    raise RuntimeError(f"the working tree does not import: {check.stderr[-2000:]}")


def otelgate_command(source: Path | None) -> tuple[list[str], dict[str, str]]:
    """How to run otelgate: from a snapshot, else the ``otelgate`` console script."""
    if source is not None:
        return [sys.executable, "-m", "gateway.cli"], {"PYTHONPATH": str(source)}
    script = Path(sys.executable).with_name("otelgate")
    if script.exists():
        return [str(script)], {}
    found = shutil.which("otelgate")
    return ([found] if found else [sys.executable, "-m", "gateway.cli"]), {}


BENCH_TOKEN = "benchmark-token-0123456789abcdef"  # a throwaway: the target listens on loopback
# Processors that run with default settings but are not part of the default pipeline: ``full``
# leaves them out, ``full-<name>`` adds them.
OPT_IN = frozenset({"redaction"})


@dataclass
class Target:
    """One running collector: where it listens and how much CPU and memory it has used."""

    product: str  # "otelgate" | "rotel"
    config: str  # "forward" | "full" | "full-noalerts" | "full-nostore" | ...
    workdir: Path
    sink_ports: list[int]
    http_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    components: list[str] = field(default_factory=list)  # what is active, for the report
    source: Path | None = None  # otelgate's code (a snapshot); None: the installed one
    workers: str = "1"  # otelgate's --workers: "1" (one process), "2", ..., "auto"
    pinned: bool = True  # on TARGET_CORE (taskset); False: every core, as the scheduler likes
    worker_processes: int = 0  # otelgate worker processes seen after the start (0: one process)
    proc: subprocess.Popen[bytes] | None = None
    _ps: psutil.Process | None = None

    @property
    def name(self) -> str:
        """``product/config``, with ``/wN`` for otelgate with more than one worker."""
        suffix = f"/w{self.workers}" if self.product == "otelgate" and self.workers != "1" else ""
        return f"{self.product}/{self.config}{suffix}"

    @property
    def authorization(self) -> str | None:
        """The ``Authorization`` value clients send (configs with ``-auth``), else None."""
        if self.product == "otelgate" and "auth" in self.config.split("-")[1:]:
            return f"Bearer {BENCH_TOKEN}"
        return None

    def admin_headers(self) -> dict[str, str]:
        """Headers for the admin listener (the token has the read scope too)."""
        return {"authorization": self.authorization} if self.authorization else {}

    @property
    def exporters(self) -> int:
        """How many sink ports receive each accepted item."""
        return 2 if self.product == "otelgate" and self.config.startswith("full") else 1

    def start(self, timeout: float = 30.0) -> None:
        """Start (pinned to the target core unless ``pinned`` is False) and wait until it
        answers."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        command, env = self._otelgate() if self.product == "otelgate" else self._rotel()
        log = (self.workdir / f"{self.product}.log").open("ab")
        self.proc = subprocess.Popen(
            [*(["taskset", "-c", TARGET_CORE] if self.pinned else []), *command],
            stdout=log, stderr=subprocess.STDOUT,
            cwd=self.workdir, env={**os.environ, **env},
        )  # fmt: skip
        log.close()
        self._ps = psutil.Process(self.proc.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.logs()}")
            if self._ready():
                self.worker_processes = proctree.worker_processes(self._ps)
                if self.worker_processes >= self._expected_workers():
                    return
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"{self.name} not ready after {timeout}s: {self.logs()}")

    def _expected_workers(self) -> int:
        """Worker processes otelgate will start (0: it runs as one process)."""
        if self.product != "otelgate" or self.workers == "1":
            return 0
        count = len(os.sched_getaffinity(0)) if self.workers == "auto" else int(self.workers)
        return 0 if (self.pinned and self.workers == "auto") or count == 1 else count

    def _ready(self) -> bool:
        if self.product == "otelgate":
            try:
                url = f"http://127.0.0.1:{self.admin_port}/health/ready"
                return httpx.get(url, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False
        for port in (self.http_port, self.grpc_port):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                return False
        return True

    def cpu_seconds(self) -> float:
        """User + system CPU time the process tree (supervisor and workers) has used so far."""
        return self.cpu_parts()["total"]

    def cpu_parts(self) -> dict[str, float]:
        """CPU seconds so far of the root process (``main``: the supervisor, or the only
        process), its descendants (``workers``) and both (``total``)."""
        assert self._ps is not None
        return proctree.cpu_parts(self._ps)

    def rss(self) -> int:
        """Resident memory of the process tree (summed over its processes)."""
        assert self._ps is not None
        return proctree.rss(self._ps)

    def exporter_figures(self, exporter: str) -> dict[str, float]:
        """From otelgate's ``/metrics``: ``exporter``'s items sent, dropped and failed so far
        (all signals) and ``queued`` (its queue's size now); empty for rotel or an absent
        exporter."""
        if self.product != "otelgate":
            return {}
        url = f"http://127.0.0.1:{self.admin_port}/metrics"
        text = httpx.get(url, headers=self.admin_headers(), timeout=10).text
        names = {
            "otelgate_exporter_sent_items_total": "sent",
            "otelgate_exporter_dropped_items_total": "dropped",
            "otelgate_exporter_failed_items_total": "failed",
            "otelgate_exporter_queue_size": "queued",
        }
        figures: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                key = names.get(sample.name)
                if key is not None and sample.labels.get("exporter") == exporter:
                    figures[key] = figures.get(key, 0.0) + float(sample.value)
        if "queued" not in figures:
            return {}
        return {key: figures.get(key, 0.0) for key in names.values()}

    def logs(self) -> str:
        path = self.workdir / f"{self.product}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within 20 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    # --- otelgate -----------------------------------------------------------------------------

    def _otelgate(self) -> tuple[list[str], dict[str, str]]:
        config = otelgate_config(self, self.config)
        path = self.workdir / "otelgate.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        command, env = otelgate_command(self.source)
        workers = [] if self.workers == "1" else ["--workers", self.workers]
        if workers:
            self.components.append(f"--workers {self.workers} (supervisor + worker processes)")
        return [*command, "run", "--config", str(path), *workers], env

    # --- rotel --------------------------------------------------------------------------------

    def _rotel(self) -> tuple[list[str], dict[str, str]]:
        command = [
            rotel_binary(), "start",
            "--otlp-grpc-endpoint", f"127.0.0.1:{self.grpc_port}",
            "--otlp-http-endpoint", f"127.0.0.1:{self.http_port}",
            "--otlp-grpc-max-recv-msg-size-mib", "64",
            "--exporter", "otlp",
            "--otlp-exporter-endpoint", f"http://127.0.0.1:{self.sink_ports[0]}",
            "--otlp-exporter-protocol", "grpc",
            "--otlp-exporter-compression", "none",
            "--pid-file", str(self.workdir / "rotel.pid"),
            "--log-file", str(self.workdir / "rotel-agent.log"),
        ]  # fmt: skip
        self.components = ["otlp receiver", "batching (default 8192 items / 200 ms)",
                           "otlp exporter"]  # fmt: skip
        if self.config.startswith("full"):
            attributes = ",".join(f"{k}={v}" for k, v in ENRICHMENT.items())
            command += ["--otel-resource-attributes", attributes]
            self.components.insert(1, "resource attributes (--otel-resource-attributes)")
        return command, {}


_PROCESSOR_TYPES = """
import json
try:  # the component registry (this layout)
    from gateway.components import REGISTRY
    models = {n: f.config for n, f in REGISTRY.types("processor").items()}
except ImportError:  # a tree from before the registry
    from gateway.config_models import COMPONENT_SECTIONS
    models = COMPONENT_SECTIONS["processors"][1]
def ok(model):
    try:
        model.model_validate({})
    except ValueError:
        return False
    return True
print(json.dumps({n: ok(m) for n, m in models.items()}))
"""


def processor_types(source: Path | None) -> dict[str, bool]:
    """The processor types of the otelgate at ``source``: whether each accepts ``{}``."""
    env = {**os.environ, **({"PYTHONPATH": str(source)} if source else {})}
    done = subprocess.run(
        [sys.executable, "-c", _PROCESSOR_TYPES], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"cannot list otelgate's processors: {done.stderr[-1000:]}")
    return {str(k): bool(v) for k, v in json.loads(done.stdout).items()}


def otelgate_config(target: Target, kind: str) -> dict[str, Any]:
    """The otelgate configuration of ``kind`` for ``target``: ``forward``, ``full`` (the
    default pipeline's work: processors, observers, alerting, error tracking, the store
    exporter, and every processor that runs with default settings except the opt-in ones),
    or ``full`` without parts, one suffix each: ``-noalerts``, ``-nostore``, ``-noerrors``
    (``full-nostore-noerrors``...), or with opt-in processors: ``-redaction``. ``-auth``
    (also on ``forward``) turns on bearer-token authentication; the load carries the token.
    Records the active components in ``target.components``."""
    sink = [f"127.0.0.1:{port}" for port in target.sink_ports]
    plain = {"protocol": "grpc", "compression": "none"}
    config: dict[str, Any] = {
        "receivers": {"otlp": {"protocols": {
            "grpc": {"endpoint": f"127.0.0.1:{target.grpc_port}"},
            "http": {"endpoint": f"127.0.0.1:{target.http_port}"},
        }}},
        "exporters": {"otlp/primary": {"endpoint": sink[0], **plain}},
        "service": {"pipelines": {
            s: {"receivers": ["otlp"], "exporters": ["otlp/primary"]}
            for s in ("traces", "logs", "metrics")
        }},
        "admin": {"endpoint": f"127.0.0.1:{target.admin_port}"},
        "logging": {"level": "warning"},
        "store": {"path": str(target.workdir / "otelgate.db")},
    }  # fmt: skip
    target.components = ["otlp receiver", "validation", "otlp exporter (gRPC, queue)",
                         "health + SLO observers (always on)",
                         "alerting (default rules) + error tracking (on by default)"]  # fmt: skip
    base, *flags = kind.split("-")
    allowed = {"auth"} if base == "forward" else {"auth", "noalerts", "nostore", "noerrors",
                                                  *OPT_IN}  # fmt: skip
    if base not in ("forward", "full") or set(flags) - allowed:
        raise ValueError(f"unknown configuration {kind!r}")
    if "auth" in flags:
        token = {"name": "bench", "token": BENCH_TOKEN, "scopes": ["ingest", "read"]}
        config["auth"] = {"tokens": [token]}
    auth = ["bearer-token auth (name stamped on every resource)"] if "auth" in flags else []
    if base == "forward":
        target.components += auth
        return config
    types = processor_types(target.source)
    pipelines = config["service"]["pipelines"]
    config["exporters"]["otlp/secondary"] = {"endpoint": sink[1], **plain}
    actions = [{"key": k, "value": v, "action": "upsert"} for k, v in ENRICHMENT.items()]
    config["processors"] = {"resource/enrich": {"attributes": actions}}
    for signal in ("traces", "logs", "metrics"):
        pipelines[signal]["processors"] = ["resource/enrich"]
    for signal in ("traces", "logs"):
        pipelines[signal]["exporters"] = ["otlp/primary", "otlp/secondary"]
    components = ["otlp receiver", "validation", "resource processor",
                  "2 otlp exporters (fan-out)"]  # fmt: skip
    if "spanmetrics" in types:
        config["processors"]["spanmetrics"] = {}
        pipelines["traces"]["processors"].append("spanmetrics")
        components.append("spanmetrics processor")
    chosen = set(flags)
    for name in sorted(set(types) - {"resource", "spanmetrics"}):  # added since (redaction...)
        if name in OPT_IN and name not in chosen:
            components.append(f"({name} processor is opt-in: left out)")
        elif types[name]:
            config["processors"][name] = {}
            for signal in ("traces", "logs"):
                pipelines[signal]["processors"].append(name)
            components.append(f"{name} processor (default settings)")
        else:
            components.append(f"({name} processor exists but needs settings: left out)")
    config["receivers"]["hostmetrics"] = {}
    pipelines["metrics"]["receivers"].append("hostmetrics")
    config["slos"] = [
        {"name": "checkout-availability", "service": "checkout", "objective": 0.99,
         "sli": {"availability": None}},
        {"name": "frontend-latency", "service": "frontend", "objective": 0.95,
         "sli": {"latency": {"threshold": "250ms"}}},
    ]  # fmt: skip
    components += ["hostmetrics receiver", "health observer", "SLO observer (2 SLOs, store)"]
    if "noalerts" in chosen:
        config["alerting"] = {"enabled": False}
        components.append("alerting off")
    else:  # the default rules, plus a log_count rule: the one condition counted per item
        config["alerting"] = {"rules": [{
            "name": "TimeoutLogs", "condition": {"log_count": {
                "severity": "warn", "match": "timeout|refused", "above": 1000, "window": "1m"}},
        }]}  # fmt: skip
        components.append("alerting (default rules + 1 log_count rule with a regex)")
    if "nostore" not in chosen:  # logs and spans into SQLite; its queue drops when full
        config["exporters"]["store"] = {}
        for signal in ("traces", "logs"):
            pipelines[signal]["exporters"].append("store")
        components.append("store exporter (logs + spans into SQLite, sheds when full)")
    if "noerrors" in chosen:
        config["errors"] = {"enabled": False}
        components.append("error tracking off")
    else:
        components.append("error tracking (on by default)")
    target.components = components + auth
    return config
