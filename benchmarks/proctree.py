"""CPU and memory of a target's whole process tree: otelgate with ``service.workers`` > 1 is a
supervisor plus worker processes, so the root process alone is not the gateway's cost.

CPU is split into parts: ``main`` (the root process: the supervisor, or the only process) and
``workers`` (every descendant: live ones read from ``/proc``, exited ones from the root's
``children_user``/``children_system``, which the kernel fills in once the root has waited for
them). ``total`` is their sum.
"""

from __future__ import annotations

import psutil

WORKER_MARK = "gateway.workers.worker"  # in a worker's command line (python -m ...)


def _descendants(root: psutil.Process) -> list[psutil.Process]:
    try:
        return list(root.children(recursive=True))
    except psutil.NoSuchProcess:
        return []


def cpu_parts(root: psutil.Process) -> dict[str, float]:
    """CPU seconds so far: ``main`` (root), ``workers`` (descendants), ``total``."""
    times = root.cpu_times()
    main = float(times.user + times.system)
    reaped = float(getattr(times, "children_user", 0.0) + getattr(times, "children_system", 0.0))
    live = 0.0
    for child in _descendants(root):
        try:
            child_times = child.cpu_times()
            live += float(child_times.user + child_times.system)
        except psutil.NoSuchProcess:  # exited meanwhile: counted in ``reaped`` next time
            continue
    workers = reaped + live
    return {"main": main, "workers": workers, "total": main + workers}


def rss(root: psutil.Process) -> int:
    """Resident memory of the tree (summed: pages shared between processes count twice)."""
    total = int(root.memory_info().rss)
    for child in _descendants(root):
        try:
            total += int(child.memory_info().rss)
        except psutil.NoSuchProcess:
            continue
    return total


def worker_processes(root: psutil.Process) -> int:
    """How many otelgate worker processes run under ``root`` (0: a single process)."""
    count = 0
    for child in _descendants(root):
        try:
            if any(WORKER_MARK in part for part in child.cmdline()):
                count += 1
        except psutil.Error:
            continue
    return count


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """``after - before`` per part."""
    return {key: after[key] - before.get(key, 0.0) for key in after}
