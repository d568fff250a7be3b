"""PromQL for the alert rules' conditions, over the metrics every gateway exports
(used by :mod:`gateway.alerting.prometheus_rules`).

What each condition becomes (``W`` is ``health.window``, 5m by default; ``SF`` the
``service_name`` filter of a rule with ``service: NAME``; every per-service alert gets a
``service`` label copied from ``service_name`` with ``label_replace``):

- ``error_rate``: ERROR calls / calls of SERVER spans (``traces_span_metrics_calls_total``),
  each a ``rate`` over ``W`` summed by ``service_name``, above the ratio, ``and`` at least
  ``min_requests`` SERVER calls (``increase`` over ``W``), like the gateway's guard.
- ``latency_p95`` / ``latency_p99``: ``histogram_quantile`` over the rate of the SERVER span
  duration buckets, by ``service_name`` and ``le``, with the same request guard. The quantile
  is interpolated within a bucket and cannot exceed the largest finite bucket boundary, so a
  threshold at or above it is skipped (it could never fire).
- ``request_rate``: SERVER calls per second over ``W`` below the threshold. Only services
  that have SERVER span series are covered (the gateway also checks services that only send
  logs or metrics).
- ``stale``: *the span counter of the service did not increase for* ``stale_after`` (its
  ``health`` threshold, per service overrides included; at least 2 minutes, so that the
  window holds two scrapes at Prometheus' default 1m interval). ``absent_over_time`` or
  ``time() - timestamp()`` do not work here: the ``spanmetrics`` processor emits its
  cumulative totals every ``flush_interval`` for as long as the gateway runs, so a silent
  service's series stays present and fresh; only its value stops moving. A second branch
  covers a gateway restart (new ``instance``, the old series end): a service with span series
  within the last hour (or twice the window, if longer) and none within the window is stale
  too. Prometheus only sees spans, so a service that sends only logs or metrics counts as
  stale here once its spans stop. The alert's value is the window, a lower bound of the
  silence (Prometheus cannot tell cheaply when a counter last changed): ``{{ value }}``
  becomes ``at least <window>`` and ``{{ threshold }}`` the window.
- ``cpu``: ``1 - (idle + iowait)`` of ``system_cpu_utilization_ratio``, ``memory``: the
  ``used`` state of ``system_memory_utilization_ratio``, ``filesystem``:
  ``system_filesystem_utilization_ratio``; all from the gateway's ``hostmetrics`` receiver
  (``otel_scope_name="otelgate.hostmetrics"``), per ``job``/``instance``. Without ``paths``,
  every filesystem the receiver reports is checked (Prometheus cannot tell which hold the
  gateway's data); with ``paths``, for each path the filesystem mounted at its longest
  ancestor mount point (``or on (job, instance)`` from the path up to ``/``), one alert per
  filesystem labelled with its first path, like the gateway. Relative paths are skipped.
- ``exporter``: retries or items given up on (``otelgate_exporter_retries_total``,
  ``otelgate_exporter_failed_items_total``) in the last 2 minutes ``unless`` the exporter
  delivered items in them: the gateway's ``retrying`` / ``failed`` state, which a delivered
  batch resets to ``ok`` (2 minutes: two scrapes at 1m, and a quick end once it delivers).
- ``queue_fill``: ``otelgate_exporter_spool_bytes / otelgate_exporter_spool_capacity_bytes``
  for an exporter with a disk spool, else ``otelgate_exporter_queue_size /
  otelgate_exporter_queue_capacity`` (the gateway's ``queue_fill_ratio``).
- ``dropped_items``: ``increase`` of ``otelgate_exporter_dropped_items_total`` plus
  ``otelgate_exporter_failed_items_total`` over the rule's ``window`` (either may not exist
  yet: ``(a + b) or a or b``).
- ``log_file``: ``otelgate_log_file_status`` (0 healthy, 1 warning, 2 critical) at or above
  the rule's ``status``, per ``path`` and ``owner``, like the gateway.

Skipped, with the reason returned for the CLI: ``slo_burn`` (``otelgate slo-rules`` already
writes the multi-window burn-rate alerts of every SLO, from the same span metrics), ``health``
(a status computed inside the gateway), ``log_count`` and ``error_group`` (no metric in
Prometheus counts log records or error groups), disabled rules.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Callable, Sequence

from gateway.alerting.evaluation import Unit
from gateway.alerting.rules import RuleConfig
from gateway.health.config import HealthConfig
from gateway.slo.rules import BUCKET, CALLS, COUNT, ERROR, SERVER

HOST_SCOPE = 'otel_scope_name="otelgate.hostmetrics"'
CPU = "system_cpu_utilization_ratio"
MEMORY = "system_memory_utilization_ratio"
FILESYSTEM = "system_filesystem_utilization_ratio"
MOUNTPOINT = "system_filesystem_mountpoint"
RETRIES = "otelgate_exporter_retries_total"
FAILED = "otelgate_exporter_failed_items_total"
DROPPED = "otelgate_exporter_dropped_items_total"
SENT = "otelgate_exporter_sent_items_total"
QUEUE_SIZE = "otelgate_exporter_queue_size"
QUEUE_CAPACITY = "otelgate_exporter_queue_capacity"
SPOOL_BYTES = "otelgate_exporter_spool_bytes"
SPOOL_CAPACITY = "otelgate_exporter_spool_capacity_bytes"
LOG_FILE_STATUS = "otelgate_log_file_status"
HOST = "job, instance"
LOG_FILE = "job, instance, path, owner"
EXPORTER = "job, instance, exporter"
EXPORTER_WINDOW = 120.0  # seconds: "retried or failed, and delivered nothing" (exporter)
MIN_STALE_WINDOW = 120.0  # seconds: two scrapes at Prometheus' default 1m interval
STALE_LOOKBACK = 3600.0  # seconds: series that ended within this are stale (restarts)

# No PromQL for these kinds: the gateway evaluates them from state Prometheus does not have.
# slo_burn is not lost: `otelgate slo-rules` writes the same multi-window burn-rate alerts
# (<Slo>ErrorBudgetBurn, severity page and ticket) from the same span metrics.
SKIPPED_KINDS = {
    "slo_burn": "SLO burn-rate alerts are in the `otelgate slo-rules` output "
    "(<Slo>ErrorBudgetBurn, severity page and ticket)",
    "health": "service health is a status computed inside the gateway; no metric in "
    "Prometheus has it",
    "log_count": "no metric in Prometheus counts log records",
    "error_group": "no metric in Prometheus has error groups",
}
_UNITS = (("y", 365 * 86_400_000), ("w", 7 * 86_400_000), ("d", 86_400_000),
          ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1))  # fmt: skip


class Skip(Exception):
    """A rule that has no Prometheus form, and why."""


def prom_duration(seconds: float) -> str:
    """``seconds`` as a Prometheus duration: ``5m``, ``1m30s``, ``250ms`` (whole ms)."""
    ms = max(1, round(seconds * 1000))
    parts = []
    for unit, size in _UNITS:
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _number(value: float) -> str:
    """A PromQL number literal, exact (``0.05``, ``2``, ``1e-06``)."""
    text = repr(float(value))
    return text.removesuffix(".0")


def quote(value: str) -> str:
    """A PromQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _selector(name: str, *matchers: str) -> str:
    given = [m for m in matchers if m]
    return name + ("{" + ",".join(given) + "}" if given else "")


def _service_label(expr: str) -> str:
    """``expr`` with a ``service`` label copied from ``service_name``."""
    return f'label_replace(\n{_indent(expr)},\n  "service", "$1", "service_name", "(.*)"\n)'


def _indent(text: str, by: str = "  ") -> str:
    return "\n".join(by + line if line else line for line in text.splitlines())


class PromQL:
    """The PromQL of each condition kind (one instance per rule file): ``kinds[kind](rule)``
    gives the expression, the unit of its value and the threshold."""

    def __init__(self, health: HealthConfig, buckets: Sequence[float]) -> None:
        self.health = health
        self.window = prom_duration(health.window)
        self.buckets = [b for b in buckets if math.isfinite(b)]
        self.kinds: dict[str, Callable[[RuleConfig], tuple[str, Unit, float | None]]] = {
            "error_rate": self.error_rate,
            "latency_p95": self.latency,
            "latency_p99": self.latency,
            "request_rate": self.request_rate,
            "stale": self.stale,
            "cpu": self.cpu,
            "memory": self.memory,
            "filesystem": self.filesystem,
            "exporter": self.exporter,
            "queue_fill": self.queue_fill,
            "dropped_items": self.dropped_items,
            "log_file": self.log_file,
        }

    # --- per service (span metrics) ----------------------------------------------------------

    @staticmethod
    def _service(rule: RuleConfig) -> str:
        return "" if rule.service in (None, "*") else f"service_name={quote(str(rule.service))}"

    def _enough(self, rule: RuleConfig, metric: str, min_requests: int) -> str:
        calls = _selector(metric, self._service(rule), SERVER)
        return (f"(sum by (service_name) (increase({calls}[{self.window}])) "
                f">= {min_requests})")  # fmt: skip

    def error_rate(self, rule: RuleConfig) -> tuple[str, Unit, float | None]:
        spec = rule.condition.error_rate
        assert spec is not None
        service, w = self._service(rule), self.window
        errors = _selector(CALLS, service, SERVER, ERROR)
        calls = _selector(CALLS, service, SERVER)
        expr = (
            f"(\n  sum by (service_name) (rate({errors}[{w}]))\n  /\n"
            f"  sum by (service_name) (rate({calls}[{w}]))\n) > {_number(spec.above)}\n"
            f"and on (service_name)\n{self._enough(rule, CALLS, spec.min_requests)}"
        )
        return _service_label(expr), "ratio", spec.above

    def latency(self, rule: RuleConfig) -> tuple[str, Unit, float | None]:
        kind = rule.condition.kind
        spec = getattr(rule.condition, kind)
        quantile = "0.95" if kind == "latency_p95" else "0.99"
        if self.buckets and spec.above >= max(self.buckets):
            raise Skip(
                f"{spec.above:g}s is not below the largest span duration bucket boundary "
                f"({max(self.buckets):g}s): histogram_quantile never exceeds it"
            )
        buckets = _selector(BUCKET, self._service(rule), SERVER)
        expr = (
            f"histogram_quantile({quantile}, sum by (service_name, le) "
            f"(rate({buckets}[{self.window}]))) > {_number(spec.above)}\n"
            f"and on (service_name)\n{self._enough(rule, COUNT, spec.min_requests)}"
        )
        return _service_label(expr), "seconds", spec.above

    def request_rate(self, rule: RuleConfig) -> tuple[str, Unit, float | None]:
        spec = rule.condition.request_rate
        assert spec is not None
        calls = _selector(CALLS, self._service(rule), SERVER)
        expr = (f"sum by (service_name) (rate({calls}[{self.window}])) "
                f"< {_number(spec.below)}")  # fmt: skip
        return _service_label(expr), "rate", spec.below

    def _stale_after(self, service: str) -> float:
        return max(MIN_STALE_WINDOW, self.health.thresholds_for(service).stale_after)

    def stale(self, rule: RuleConfig) -> tuple[str, Unit, float | None]:
        if rule.service not in (None, "*"):
            service = str(rule.service)
            parts = [(f"service_name={quote(service)}", self._stale_after(service))]
        else:
            default = max(MIN_STALE_WINDOW, self.health.thresholds.stale_after)
            others = sorted(s for s in self.health.services if self._stale_after(s) != default)
            rest = "|".join(re.escape(s) for s in others)
            parts = [(f"service_name!~{quote(rest)}" if rest else "", default)]
            parts += [(f"service_name={quote(s)}", self._stale_after(s)) for s in others]
        expr = "\nor\n".join(self._stale_part(matcher, window) for matcher, window in parts)
        return _service_label(expr), "seconds", None

    @staticmethod
    def _stale_part(matcher: str, seconds: float) -> str:
        calls, window = _selector(CALLS, matcher), prom_duration(seconds)
        lookback = prom_duration(max(STALE_LOOKBACK, 2 * seconds))
        return (
            f"(\n  sum by (service_name) (increase({calls}[{window}])) == 0\n  or\n"
            f"  (\n    count by (service_name) (count_over_time({calls}[{lookback}]))\n"
            f"    unless on (service_name)\n"
            f"    count by (service_name) (count_over_time({calls}[{window}]))\n  )\n"
            f") * 0 + {_number(seconds)}"
        )

    # --- host (hostmetrics receiver) ---------------------------------------------------------

    def cpu(self, rule: RuleConfig) -> tuple[str, Unit, float | None]:
        spec = rule.condition.cpu
        assert spec is not None
        idle = _selector(CPU, HOST_SCOPE, 'cpu_mode=~"idle|iowait"')
        expr = f"(1 - sum by ({HOST}) ({idle})) > {_number(spec.above)}"
        return expr, "ratio", spec.above

    def memory(self, rule: RuleConfig) -> tuple[str, Unit, float | None]:
        spec = rule.condition.memory
        assert spec is not None
        used = _selector(MEMORY, HOST_SCOPE, 'system_memory_state="used"')
        expr = f"max by ({HOST}) ({used}) > {_number(spec.above)}"
        return expr, "ratio", spec.above

    def filesystem(self, rule: RuleConfig) -> tuple[str, Unit, float | None]:
        spec = rule.condition.filesystem
        assert spec is not None
        relative = [p for p in spec.paths if not posixpath.isabs(p)]
        if relative:
            raise Skip(
                f"path {relative[0]!r} is relative: the mount point holding it is only known "
                "on the gateway's host (use absolute paths)"
            )

        def usage(*matchers: str) -> str:
            series = _selector(FILESYSTEM, HOST_SCOPE, *matchers)
            return f"max by ({HOST}, {MOUNTPOINT}) ({series})"

        if not spec.paths:
            selected = (
                f'label_replace(\n{_indent(usage())},\n  "path", "$1", "{MOUNTPOINT}", "(.*)"\n)'
            )
        else:
            by_path = []
            for path in sorted({posixpath.normpath(p) for p in spec.paths}):
                chain = f"\nor on ({HOST})\n".join(
                    usage(f"{MOUNTPOINT}={quote(m)}") for m in _ancestors(path)
                )
                literal = path.replace("$", "$$")
                by_path.append(
                    f"label_replace(\n  (\n{_indent(chain, '    ')}\n  ),\n"
                    f'  "path", {quote(literal)}, "", ""\n)'
                )
            selected = f"\nor on ({HOST}, {MOUNTPOINT})\n".join(by_path)
        expr = (f"label_replace(\n  (\n{_indent(selected, '    ')}\n  ) > {_number(spec.above)},"
                f'\n  "mountpoint", "$1", "{MOUNTPOINT}", "(.*)"\n)')  # fmt: skip
        return expr, "ratio", spec.above

    # --- exporters (the gateway's own /metrics) ----------------------------------------------

    @staticmethod
    def _exporter(name: str | None) -> str:
        return "" if name is None else f"exporter={quote(name)}"

    def exporter(self, rule: RuleConfig) -> tuple[str, Unit, float | None]:
        spec = rule.condition.exporter
        assert spec is not None
        only, w = self._exporter(spec.name), prom_duration(EXPORTER_WINDOW)

        def rate(metric: str) -> str:
            return f"sum by ({EXPORTER}) (rate({_selector(metric, only)}[{w}])) > 0"

        expr = (f"(\n  {rate(RETRIES)}\n  or\n  {rate(FAILED)}\n)\n"
                f"unless on ({EXPORTER})\n{rate(SENT)}")  # fmt: skip
        return expr, "rate", None

    def queue_fill(self, rule: RuleConfig) -> tuple[str, Unit, float | None]:
        spec = rule.condition.queue_fill
        assert spec is not None
        only = self._exporter(spec.name)

        def ratio(used: str, capacity: str) -> str:
            used, capacity = _selector(used, only), _selector(capacity, only)
            return f"max by ({EXPORTER}) ({used} / ({capacity} > 0))"

        expr = (f"(\n  {ratio(SPOOL_BYTES, SPOOL_CAPACITY)}\n  or\n"
                f"  {ratio(QUEUE_SIZE, QUEUE_CAPACITY)}\n) > {_number(spec.above)}")  # fmt: skip
        return expr, "ratio", spec.above

    def dropped_items(self, rule: RuleConfig) -> tuple[str, Unit, float | None]:
        spec = rule.condition.dropped_items
        assert spec is not None
        only, w = self._exporter(spec.name), prom_duration(spec.window)
        dropped = f"sum by ({EXPORTER}) (increase({_selector(DROPPED, only)}[{w}]))"
        failed = f"sum by ({EXPORTER}) (increase({_selector(FAILED, only)}[{w}]))"
        expr = (f"(\n  (\n    {dropped}\n    +\n    {failed}\n  )\n  or\n  {dropped}\n  or\n"
                f"  {failed}\n) > {_number(spec.above)}")  # fmt: skip
        return expr, "count", spec.above

    # --- files the gateway writes (docs/log-files.md) ---------------------------------------

    def log_file(self, rule: RuleConfig) -> tuple[str, Unit, float | None]:
        spec = rule.condition.log_file
        assert spec is not None
        least = 2.0 if spec.status == "critical" else 1.0
        only = "" if spec.path is None else f"path={quote(spec.path)}"
        expr = f"max by ({LOG_FILE}) ({_selector(LOG_FILE_STATUS, only)}) >= {_number(least)}"
        return expr, "count", least


def _ancestors(path: str) -> list[str]:
    """``/a/b`` -> ``["/a/b", "/a", "/"]``: the mount points that may hold it, nearest first."""
    found = [path]
    while path != posixpath.dirname(path):
        path = posixpath.dirname(path)
        found.append(path)
    return found
