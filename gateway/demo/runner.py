"""Runs the demo: the gateway on its embedded default, three instrumented services under
``opentelemetry-instrument``, and a steady trickle of traffic, until Ctrl-C or ``--duration``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from exporters.prometheus.pull import PrometheusExporterConfig
from gateway.config.model import Config
from gateway.demo.traffic import Traffic, drive_traffic
from gateway.receivers.otlp import OtlpReceiverConfig
from gateway.service import Gateway

# name -> (downstream service or None)
TOPOLOGY = {"payments": None, "checkout": "payments", "frontend": "checkout"}


@dataclass
class DemoService:
    """One service process."""

    name: str
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _instrument_command() -> list[str]:
    """``opentelemetry-instrument`` next to this interpreter (a venv), else on PATH."""
    script = Path(sys.executable).with_name("opentelemetry-instrument")
    if script.exists():
        return [str(script)]
    found = shutil.which("opentelemetry-instrument")
    if found is None:
        raise RuntimeError("opentelemetry-instrument is not installed (pip install otelgate)")
    return [found]


def _otlp_port(config: Config) -> int:
    otlp = config.receivers.get("otlp")
    if not isinstance(otlp, OtlpReceiverConfig) or otlp.protocols.grpc is None:
        raise RuntimeError("the demo needs the otlp receiver with gRPC enabled")
    return otlp.protocols.grpc.port


def start_services(config: Config, log_dir: Path) -> list[DemoService]:
    """Start the services, downstream first; their stdout (JSON logs) goes to ``log_dir``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    services = {name: DemoService(name, _free_port()) for name in TOPOLOGY}
    endpoint = f"http://127.0.0.1:{_otlp_port(config)}"
    for name, downstream in TOPOLOGY.items():
        service = services[name]
        env = {
            **os.environ,
            "OTEL_SERVICE_NAME": name,
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_BSP_SCHEDULE_DELAY": "500",
            "OTEL_BLRP_SCHEDULE_DELAY": "500",
            "OTEL_METRIC_EXPORT_INTERVAL": "5000",
            "OTELGATE_DEMO_SERVICE": name,
            "OTELGATE_DEMO_DOWNSTREAM": services[downstream].url if downstream else "",
        }
        command = [
            *_instrument_command(), sys.executable, "-m", "uvicorn", "gateway.demo.services:app",
            "--host", "127.0.0.1", "--port", str(service.port), "--no-access-log",
        ]  # fmt: skip
        with (log_dir / f"{name}.log").open("ab") as out:
            service.process = subprocess.Popen(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
    return list(services.values())


async def wait_until_up(services: list[DemoService], timeout: float = 60.0) -> None:
    """Poll each service's /health until it answers, or raise naming the one that did not."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=1.0) as client:
        for service in services:
            while True:
                assert service.process is not None
                if service.process.poll() is not None:
                    raise RuntimeError(f"demo service {service.name} exited during start-up")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{service.url}/health")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"demo service {service.name} did not start in {timeout}s")
                await asyncio.sleep(0.2)


def stop_services(services: list[DemoService], timeout: float = 10.0) -> None:
    """SIGTERM every service (they flush their telemetry), SIGKILL what hangs."""
    for service in services:
        if service.process is not None and service.process.poll() is None:
            service.process.send_signal(signal.SIGTERM)
    for service in services:
        if service.process is None:
            continue
        try:
            service.process.wait(timeout)
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait(5)


def _alerts_line(gateway: Gateway) -> str:
    """``; alerts: HighErrorRate firing for checkout, ...`` while alerts are open."""
    if gateway.alerting is None:
        return ""
    open_alerts = gateway.alerting.open_alerts()
    if not open_alerts:
        return "; no alerts"
    shown = [
        f"{a.rule} {a.state}" + (f" for {a.service}" if a.service else "") for a in open_alerts[:4]
    ]
    more = f" +{len(open_alerts) - 4}" if len(open_alerts) > 4 else ""
    return f"; alerts: {', '.join(shown)}{more}"


def _errors_line(gateway: Gateway) -> str:
    """``; error groups: 1 (TimeoutError 12x)`` once exceptions were seen."""
    if gateway.errors is None or not gateway.errors.tracker.groups:
        return ""
    groups = sorted(gateway.errors.tracker.groups.values(), key=lambda g: -g.count)
    top = groups[0]
    return f"; error groups: {len(groups)} ({top.type} {top.count}x)"


def banner(config: Config, services: list[DemoService], log_dir: Path) -> str:
    admin = f"http://{config.admin.endpoint}"
    lines = [
        "otelgate demo is running. Where to look:",
        f"  dashboard           {admin}/",
        f"  gateway readiness   {admin}/health/ready",
        f"  gateway health      {admin}/health",
        f"  services            {admin}/health/services",
        f"  SLOs                {admin}/slo",
        f"  alerts              {admin}/alerts",
        f"  error groups        {admin}/errors",
        f"  logs (search)       {admin}/logs?q=declined",
        f"  slow/failed traces  {admin}/traces?status=error",
        f"  gateway metrics     {admin}/metrics",
        f"  service metrics     {admin}{metrics_path(config)}",
        f"  API docs            {admin}/docs",
        f"  stored telemetry    {data_dir(config)}/",
        f"  service logs (JSON) {log_dir}/",
        "  demo services       " + ", ".join(f"{s.name} {s.url}" for s in services),
        "Press Ctrl-C to stop.",
        "",
        f"Open the dashboard: {admin}/",
    ]
    return "\n".join(lines)


def metrics_path(config: Config) -> str:
    """Where Prometheus scrapes the services' metrics (the prometheus exporter's path)."""
    for exporter in config.exporters.values():
        if isinstance(exporter, PrometheusExporterConfig):
            return exporter.path
    return "/metrics/otlp"


def data_dir(config: Config) -> str:
    """Where the embedded default keeps its data (the first file exporter's directory)."""
    for exporter in config.exporters.values():
        path = getattr(exporter, "path", None)
        if path:
            return str(Path(path).parent)
    return os.environ.get("OTELGATE_DATA_DIR", "./otelgate-data")


DEMO_SLOS = [
    {"name": "checkout-availability", "service": "checkout", "objective": 0.99,
     "description": "Checkouts answer without errors", "sli": {"availability": {}}},
    {"name": "payments-latency", "service": "payments", "objective": 0.95,
     "description": "Charges answer within 300 ms", "sli": {"latency": {"threshold": "300ms"}}},
]  # fmt: skip


def with_demo_slos(config: Config) -> Config:
    """``config`` with two SLOs over the demo services when it defines none (so ``/slo`` and
    the dashboard show error budgets and burn rates)."""
    if config.slos.root:
        return config
    return config.model_copy(update={"slos": type(config.slos).model_validate(DEMO_SLOS)})


async def run_demo(config: Config, duration: float | None, rate: float) -> int:
    """The whole demo; returns the process exit code."""
    config = with_demo_slos(config)
    gateway = Gateway(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await gateway.start()
    except OSError as exc:
        print(f"otelgate demo: {exc}", file=sys.stderr)
        await gateway.stop()
        return 1
    log_dir = Path(data_dir(config)) / "demo-logs"
    services = start_services(config, log_dir)
    traffic = Traffic()
    try:
        await wait_until_up(services)
        print(banner(config, services, log_dir), flush=True)
        frontend = next(s for s in services if s.name == "frontend")
        driver = asyncio.create_task(drive_traffic(frontend.url, rate, stop, traffic))
        started = time.monotonic()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 5.0)
            elapsed = time.monotonic() - started
            print(
                f"[{elapsed:5.0f}s] requests sent {traffic.sent}, failed {traffic.failed}; "
                f"gateway has seen: {', '.join(gateway.health.names()) or 'nothing yet'}"
                f"{_alerts_line(gateway)}{_errors_line(gateway)}",
                flush=True,
            )
            if duration is not None and elapsed >= duration:
                stop.set()
        await driver
    except RuntimeError as exc:
        print(f"otelgate demo: {exc} (logs in {log_dir})", file=sys.stderr)
        return 1
    finally:
        print("stopping the demo services and the gateway...", flush=True)
        await asyncio.to_thread(stop_services, services)
        await gateway.stop()
    print(f"done: {traffic.sent} requests, {traffic.failed} failed; services seen: "
          f"{', '.join(gateway.health.names())}", flush=True)  # fmt: skip
    return 0
