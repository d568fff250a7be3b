"""The ``otelgate`` command: ``run``, ``check-config``, ``audit verify`` and ``version``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from gateway import __version__
from gateway.audit.command import add_audit_parser
from gateway.config.issues import ConfigError
from gateway.config.loading import default_config, load_config
from gateway.config.model import MAX_WORKERS, Config, LoggingConfig
from gateway.config.overrides import apply_env_overrides
from gateway.logfiles.handler import close_log_files, log_file_handler
from gateway.redact import RedactingFormatter
from gateway.security.auth_config import secrets_unread

log = logging.getLogger("otelgate")


def configure_logging(settings: LoggingConfig) -> None:
    """The gateway's own logs on stderr, as text or JSON lines, and in ``logging.file``
    (rotated, docs/log-files.md) when set."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.format == "json":
        from instrumentation.logs import JsonFormatter

        formatter: logging.Formatter = JsonFormatter()
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Credentials never reach a log line, whichever library wrote it (httpx logs request URLs).
    handler.setFormatter(RedactingFormatter(formatter))
    root = logging.getLogger()
    close_log_files(root)  # a previous configuration's log file
    root.handlers[:] = [handler]
    if settings.file is not None:
        try:
            root.addHandler(log_file_handler(settings.file, settings.rotation, handler.formatter))
        except OSError as exc:
            raise SystemExit(f"otelgate: cannot open logging.file {settings.file}: {exc}") from exc
    root.setLevel(settings.level.upper())
    # uvicorn announces each embedded server; the gateway logs its own start-up line.
    logging.getLogger("uvicorn.error").setLevel(max(logging.WARNING, root.level))


def resolve_config(path: str | None) -> Config:
    """The config from ``path`` (or ``OTELGATE_CONFIG``), else the embedded default."""
    path = path or os.environ.get("OTELGATE_CONFIG")
    if path:
        return apply_env_overrides(load_config(path), os.environ)
    return apply_env_overrides(default_config(os.environ), os.environ)


async def serve(config: Config, reload_config: Callable[[], Config] | None = None) -> int:
    """Run the gateway until SIGTERM or SIGINT, then drain and stop.

    A second SIGINT (Ctrl-C twice) stops at once, counting what was still queued as dropped;
    repeated SIGTERMs (a supervisor and a process-group kill) do not cut the drain short.
    """
    from gateway.service import Gateway

    gateway = Gateway(config, reload_config=reload_config)
    stop = asyncio.Event()
    hurry = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, _on_signal, stop, None, signal.SIGTERM)
    loop.add_signal_handler(signal.SIGINT, _on_signal, stop, hurry, signal.SIGINT)
    reloads: set[asyncio.Task[Any]] = set()
    if gateway.reloader is not None:
        reloader = gateway.reloader

        def on_hangup() -> None:
            log.info("received SIGHUP: reloading the configuration")
            task = asyncio.create_task(reloader.reload())
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, on_hangup)
    try:
        await gateway.start()
    except OSError as exc:
        log.error("%s", exc)
        await gateway.stop()
        return 1
    await stop.wait()
    hurry.clear()
    stopping = asyncio.create_task(gateway.stop())
    hurried = asyncio.create_task(hurry.wait())
    done, _ = await asyncio.wait({stopping, hurried}, return_when=asyncio.FIRST_COMPLETED)
    if stopping not in done:
        log.warning("second Ctrl-C: stopping without waiting for the exporter queues")
        await gateway.stop(drain_timeout=0.0)
        await stopping
        return 130
    hurried.cancel()
    return 0


def _on_signal(stop: asyncio.Event, hurry: asyncio.Event | None, sig: signal.Signals) -> None:
    if stop.is_set():
        if hurry is not None:
            hurry.set()
        return
    log.info("received %s", sig.name)
    stop.set()


GIL_SWITCH_INTERVAL = 0.001


def run_async(main: Coroutine[Any, Any, int]) -> int:
    """Run ``main`` on uvloop when it is installed (``OTELGATE_EVENT_LOOP=asyncio`` opts out).

    uvloop's libuv loop costs less per callback, socket read and timer than asyncio's own loop,
    which the receivers pay on every request; grpc.aio and uvicorn both run on it.
    """
    choice = os.environ.get("OTELGATE_EVENT_LOOP", "uvloop").strip().lower()
    if choice not in ("uvloop", "asyncio"):
        raise SystemExit(f"otelgate: OTELGATE_EVENT_LOOP must be uvloop or asyncio, not {choice!r}")
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if choice == "uvloop":
        try:
            import uvloop
        except ImportError:
            log.debug("uvloop is not installed; using asyncio's event loop")
        else:
            factory = uvloop.new_event_loop
    # Large requests are decoded in worker threads; the loop thread must get the GIL back
    # within a millisecond, not Python's default 5 ms per wake-up, to keep answering.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def _cmd_run(args: argparse.Namespace) -> int:
    def load() -> Config:
        config = resolve_config(args.config)
        if args.workers is None:
            return config
        service = config.service.model_copy(update={"workers": args.workers})
        return config.model_copy(update={"service": service})

    try:
        config = load()
    except ConfigError as exc:
        print(f"otelgate: invalid configuration:\n{exc}", file=sys.stderr)
        return 1
    configure_logging(config.logging)
    from gateway.workers.roles import worker_count

    count = worker_count(config.service.workers)
    if count > 1:
        from gateway.workers.supervisor import serve_supervised

        return run_async(serve_supervised(config, count, load))
    return run_async(serve(config, load))


def _workers(value: str) -> int | str:
    if value.strip().lower() == "auto":
        return "auto"
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number or auto, not {value!r}") from None
    if not 1 <= number <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_WORKERS}")
    return number


def _cmd_demo(args: argparse.Namespace) -> int:
    from gateway.demo.runner import run_demo

    try:
        config = resolve_config(args.config)
    except ConfigError as exc:
        print(f"otelgate: invalid configuration:\n{exc}", file=sys.stderr)
        return 1
    configure_logging(config.logging.model_copy(update={"level": "warning"}))
    return run_async(run_demo(config, args.duration, args.rate))


def _cmd_check_config(args: argparse.Namespace) -> int:
    try:
        config = apply_env_overrides(load_config(args.file), os.environ)
    except ConfigError as exc:
        print(f"{args.file}: {len(exc.errors)} error(s)\n{exc}", file=sys.stderr)
        return 1
    pipelines = ", ".join(config.service.pipelines)
    print(f"{args.file}: OK (pipelines: {pipelines})")
    return 0


def _cmd_slo_rules(args: argparse.Namespace) -> int:
    from gateway.slo import rules as slo_rules

    try:
        with secrets_unread():  # token files may exist only where the gateway runs
            config = resolve_config(args.config)
        rules = slo_rules.generate(config, args.openslo)
    except ConfigError as exc:
        print(f"otelgate: cannot generate SLO rules:\n{exc}", file=sys.stderr)
        return 1
    text = slo_rules.render(rules)
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"{args.output}: {len(rules['groups'])} rule groups", file=sys.stderr)
    return 0


def _cmd_alert_rules(args: argparse.Namespace) -> int:
    from gateway.alerting import prometheus_rules as alert_rules

    try:
        with secrets_unread():
            config = resolve_config(args.config)
        rules, skipped = alert_rules.generate(config, alert_rules.config_dir(args.config))
    except ConfigError as exc:
        print(f"otelgate: cannot generate alert rules:\n{exc}", file=sys.stderr)
        return 1
    for name, why in skipped:
        print(f"otelgate: skipped {name}: {why}", file=sys.stderr)
    text = alert_rules.render(rules, skipped)
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        count = len(rules["groups"][0]["rules"])
        print(f"{args.output}: {count} alerting rules", file=sys.stderr)
    return 0


def _cmd_version(_: argparse.Namespace) -> int:
    print(f"otelgate {__version__}")
    return 0


RUN_EPILOG = """\
ports (the embedded default; a config file sets its own):
  0.0.0.0:4317    OTLP/gRPC         (receivers.otlp.protocols.grpc.endpoint)
  0.0.0.0:4318    OTLP/HTTP /v1/*   (receivers.otlp.protocols.http.endpoint)
  127.0.0.1:8888  admin: dashboard /, /health, /slo, /alerts, /metrics,
                  /metrics/otlp, /docs (admin.endpoint)

data directory: $OTELGATE_DATA_DIR, else ./otelgate-data (store otelgate.db, spool/,
  audit/ when enabled)

environment:
  OTELGATE_CONFIG           configuration file when --config is not given
  OTELGATE_DATA_DIR         data directory (see above)
  OTELGATE_GRPC_ENDPOINT    override the otlp receiver's gRPC endpoint, e.g. 0.0.0.0:4317
  OTELGATE_HTTP_ENDPOINT    override the otlp receiver's HTTP endpoint
  OTELGATE_ADMIN_ENDPOINT   override admin.endpoint
  OTELGATE_LOG_LEVEL        override logging.level (debug, info, warning, error)
  OTELGATE_EVENT_LOOP       uvloop (default when installed) or asyncio
  OTELGATE_WORKER_INDEX, OTELGATE_WORKER_COUNT, OTELGATE_WORKER_LINK_FD
                            set by the supervisor for its worker processes (--workers)
  ${env:NAME} in the config file is replaced by the variable's value.

docs: docs/configuration.md, docs/operations.md, docs/troubleshooting.md
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otelgate", description=__doc__)
    parser.add_argument("--version", action="version", version=f"otelgate {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="run the gateway (embedded default without --config)",
        description="Run the gateway until SIGTERM or Ctrl-C (SIGHUP reloads the config).",
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--config", "-c", type=str, help="YAML configuration file")
    run.add_argument(
        "--workers", type=_workers, metavar="N|auto",
        help="worker processes sharing the OTLP ports (service.workers; auto = usable CPUs)",
    )  # fmt: skip
    run.set_defaults(func=_cmd_run)
    demo = commands.add_parser(
        "demo", help="run the gateway with three instrumented demo services and traffic"
    )
    demo.add_argument("--config", "-c", type=str, help="YAML configuration file")
    demo.add_argument("--duration", type=float, help="stop after this many seconds")
    demo.add_argument("--rate", type=float, default=5.0, help="requests per second (default 5)")
    demo.set_defaults(func=_cmd_demo)
    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file", type=Path)
    check.set_defaults(func=_cmd_check_config)
    rules = commands.add_parser(
        "slo-rules", help="Prometheus recording and alerting rules for the SLOs (Sloth names)"
    )
    rules.add_argument("--config", "-c", type=str, help="YAML configuration file")
    rules.add_argument(
        "--openslo", nargs="+", default=[], metavar="FILE", help="OpenSLO v1 files to add"
    )
    rules.add_argument("--output", "-o", type=str, help="write the rules here (default: stdout)")
    rules.set_defaults(func=_cmd_slo_rules)
    alerts = commands.add_parser(
        "alert-rules", help="Prometheus alerting rules for the alert rules (alerting.rules)"
    )
    alerts.add_argument("--config", "-c", type=str, help="YAML configuration file")
    alerts.add_argument("--output", "-o", type=str, help="write the rules here (default: stdout)")
    alerts.set_defaults(func=_cmd_alert_rules)
    add_audit_parser(commands)  # audit verify
    version = commands.add_parser("version", help="print the version")
    version.set_defaults(func=_cmd_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``otelgate`` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
