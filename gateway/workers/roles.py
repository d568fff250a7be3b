"""Which component runs where when ``service.workers`` > 1.

Workers run the OTLP receivers. The supervisor runs what keeps or writes state that must be
one: the Prometheus pull exporter (one exposition), the embedded store and file output (one
writer per file), CloudWatch's metrics (deltas per series), span metrics (one series per label
set), host metrics (one host) and every observer.

A pipeline runs in one place, whole, so its processors run once per batch, in their order:
in the workers when it uses only forwarding exporters and processors (each worker its own
queues and spool partition), else in the supervisor. The supervisor also runs the forwarding
exporters, for its own pipelines and for the data it produces itself (span and host metrics).
"""

from __future__ import annotations

import os
from typing import Literal

from gateway.config.model import Config
from gateway.registry import component_type

#: Exporters that hold or write state shared by all workers: the supervisor runs them.
CENTRAL_EXPORTERS = frozenset({"prometheus", "store", "file"})
#: Exporters that keep state per metric series (the cloudwatch exporter turns cumulative sums
#: into deltas from the previous point): the supervisor runs their metrics pipelines.
CENTRAL_METRICS_EXPORTERS = frozenset({"cloudwatch"})
#: Processors that keep state (counters per label set): only the supervisor runs them.
CENTRAL_PROCESSORS = frozenset({"spanmetrics"})
#: Receivers that listen for clients: every worker runs them on the shared ports.
WORKER_RECEIVERS = frozenset({"otlp"})

Workers = int | Literal["auto"]


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def worker_count(setting: Workers) -> int:
    """``service.workers`` as a number (``auto``: the usable CPUs)."""
    return usable_cpus() if setting == "auto" else int(setting)


def central_exporter(component_id: str, signal: str) -> bool:
    """Whether the supervisor (not the workers) delivers this exporter's ``signal`` data."""
    kind = component_type(component_id)
    return kind in CENTRAL_EXPORTERS or (signal == "metrics" and kind in CENTRAL_METRICS_EXPORTERS)


def central_processor(component_id: str) -> bool:
    """Whether only the supervisor runs this processor."""
    return component_type(component_id) in CENTRAL_PROCESSORS


def worker_receiver(component_id: str) -> bool:
    """Whether workers (not the supervisor) run this receiver."""
    return component_type(component_id) in WORKER_RECEIVERS


def worker_pipeline(config: Config, pipeline: str) -> bool:
    """Whether workers run ``pipeline`` (for the batches of worker receivers): it is fed by
    one and uses no central exporter or processor."""
    cfg = config.service.pipelines[pipeline]
    return (
        any(worker_receiver(r) for r in cfg.receivers)
        and not any(central_exporter(e, component_type(pipeline)) for e in cfg.exporters)
        and not any(central_processor(p) for p in cfg.processors)
    )


#: Config sections the workers run: a reload that changes one replaces the workers.
WORKER_SECTIONS = ("receivers", "processors", "exporters", "service", "auth", "logging")


def worker_changes(old: Config, new: Config) -> list[str]:
    """The sections the workers run that differ between ``old`` and ``new`` (receivers: only
    those workers run; a syslog receiver runs in the supervisor)."""

    def part(config: Config, section: str) -> object:
        value = getattr(config, section)
        if section == "receivers":
            return {k: v for k, v in value.items() if worker_receiver(k)}
        return value

    return [s for s in WORKER_SECTIONS if part(old, s) != part(new, s)]


def worker_exporters(config: Config) -> list[str]:
    """The exporters a worker runs: those of the pipelines workers run."""
    used = {
        exporter
        for name, pipeline in config.service.pipelines.items()
        if worker_pipeline(config, name)
        for exporter in pipeline.exporters
    }
    return [name for name in config.exporters if name in used]
