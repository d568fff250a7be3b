"""The managed files' metrics, read from their status at scrape time (docs/log-files.md).

``otelgate_log_file_status`` (0 healthy, 1 warning, 2 critical), ``_size_bytes``,
``_free_bytes`` (free space of the directory), ``_rotations_total{reason}``,
``_compressed_bytes_total`` (rotated bytes gzipped) and ``_gzip_bytes_total`` (what they take
compressed), ``_removed_files_total{reason}`` (retention), ``_failures_total{step}``; each
labelled with the file's ``path`` and ``owner``. A file whose status can't be read at all is
exported as critical, so one broken file never breaks the scrape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.logfiles.managed import ManagedFile
from gateway.logfiles.status import LEVEL_VALUES

LABELS = ["path", "owner"]


def _families() -> dict[str, GaugeMetricFamily | CounterMetricFamily]:
    return {
        "status": GaugeMetricFamily(
            "otelgate_log_file_status",
            "Rotation status of a file the gateway writes: 0 healthy, 1 warning, 2 critical.",
            labels=LABELS,
        ),
        "size": GaugeMetricFamily(
            "otelgate_log_file_size_bytes", "Size of the active file.", labels=LABELS
        ),
        "free": GaugeMetricFamily(
            "otelgate_log_file_free_bytes",
            "Free space of the filesystem holding the file.",
            labels=LABELS,
        ),
        "rotations": CounterMetricFamily(
            "otelgate_log_file_rotations",
            "Rotations, by reason (size, daily).",
            labels=[*LABELS, "reason"],
        ),
        "compressed": CounterMetricFamily(
            "otelgate_log_file_compressed_bytes",
            "Bytes of rotated files gzipped (their size before compression).",
            labels=LABELS,
        ),
        "gzip": CounterMetricFamily(
            "otelgate_log_file_gzip_bytes",
            "Bytes the gzipped rotated files take.",
            labels=LABELS,
        ),
        "removed": CounterMetricFamily(
            "otelgate_log_file_removed_files",
            "Rotated files removed by retention, by reason (age, count).",
            labels=[*LABELS, "reason"],
        ),
        "failures": CounterMetricFamily(
            "otelgate_log_file_failures",
            "Failed steps, by step (write, rotate, compress, cleanup).",
            labels=[*LABELS, "step"],
        ),
    }


class LogFilesCollector(Collector):
    """The metrics of the files ``files()`` returns (asked at each scrape)."""

    def __init__(self, files: Callable[[], Sequence[ManagedFile]]) -> None:
        self.files = files

    def describe(self) -> Iterator[Metric]:
        """The families (so the registry can detect name clashes)."""
        yield from _families().values()

    def collect(self) -> Iterator[Metric]:
        """The current values."""
        m = _families()
        for managed in self.files():
            try:
                s = managed.file.status()
            except Exception:  # any file's bug: still answer the scrape
                path = str(getattr(managed.file, "path", "?"))
                m["status"].add_metric([path, managed.owner], LEVEL_VALUES["critical"])
                continue
            labels = [s.path, managed.owner]
            m["status"].add_metric(labels, LEVEL_VALUES[s.level])
            m["size"].add_metric(labels, s.size_bytes)
            if s.free_bytes is not None:
                m["free"].add_metric(labels, s.free_bytes)
            for reason in ("size", "daily"):
                m["rotations"].add_metric([*labels, reason], s.rotations.get(reason, 0))
            m["compressed"].add_metric(labels, s.compressed_bytes)
            m["gzip"].add_metric(labels, s.gzip_bytes)
            for reason in ("age", "count"):
                m["removed"].add_metric([*labels, reason], s.removed_files.get(reason, 0))
            for step in ("write", "rotate", "compress", "cleanup"):
                m["failures"].add_metric([*labels, step], s.failures.get(step, 0))
        yield from m.values()
