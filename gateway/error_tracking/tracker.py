"""The error tracker: an observer that groups every exception it sees.

Per occurrence the work is a few dictionary operations: the fingerprint of a stack trace
(or, without one, of a message) is cached, so an exception storm parses each distinct trace
once; a group takes a full sample only for its first ``samples_per_group`` occurrences and
then at most once per ``sample_interval``. Samples and changed groups wait in memory until
the store writes them (:mod:`gateway.error_tracking.persistence`).
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from gateway.error_tracking.capture import Occurrence, occurrences
from gateway.error_tracking.config import ErrorTrackingConfig
from gateway.error_tracking.fingerprint import Fingerprint, fingerprint, normalise_message
from gateway.error_tracking.groups import ErrorGroup, FrameInfo, Sample, Status
from gateway.error_tracking.stacktrace import ParsedStack, parse_stacktrace
from gateway.otlp.batch import Batch

Change = Literal["new", "regression"]
_CACHE_SIZE = 4096  # distinct (type, stack) fingerprints remembered
# Line and column numbers and code offsets in stack traces: they never change a fingerprint.
_POSITIONS = re.compile(r"(?<=line )\d+|:\d+|\+0x[0-9a-fA-F]+")
_DIGITS = re.compile(r"\d+")
_NO_FRAMES = ParsedStack("unknown", ())


def _shape(stack: str, message: str) -> str:
    """A stack trace without what never changes its fingerprint: line and column numbers,
    offsets, the message, and numbers in its first and last lines (where every language
    prints the message; frames are never there)."""
    text = stack.replace(message, "") if message else stack
    head, _, rest = text.strip().partition("\n")
    body, _, tail = rest.rpartition("\n")
    return "\n".join((_DIGITS.sub("", head), _POSITIONS.sub("", body), _DIGITS.sub("", tail)))


_TRACES_REMEMBERED = 100_000  # (trace, group) pairs remembered to count a request once
PAIR_WINDOW = 2.0  # seconds between a traced report and a traceless twin of one exception
_SAMPLES_HELD = 1000  # samples kept referenced for completion (each may hold a 64 KiB stack)
_UNPAIRED_KEPT = 32  # recent reports per (group, service, traced or not) waiting for a twin


# The sample taken of an occurrence (None: none was), shared by its other reports.
_Held = list[Sample | None]
_Waiting = deque[tuple[float, _Held]]  # reports waiting for a twin: (time, their sample)


def _complete(sample: Sample, report: Occurrence) -> bool:
    """Add what another report of the same exception knows: its trace context when the
    sample has none, the span that recorded it, request attributes the sample lacks. Returns
    whether the sample changed."""
    before = (sample.trace_id, sample.span_id, sample.source, len(sample.attributes))
    if sample.trace_id is None and any(report.trace_id):
        sample.trace_id, sample.span_id = report.trace_id.hex(), report.span_id.hex()
    if report.source == "span" and sample.trace_id == report.trace_id.hex():
        sample.span_id, sample.source = report.span_id.hex(), "span"
    for key, value in report.attributes().items():
        sample.attributes.setdefault(key, value)
    return before != (sample.trace_id, sample.span_id, sample.source, len(sample.attributes))


@dataclass(frozen=True, slots=True)
class GroupChange:
    """A group that appeared, or came back after being resolved."""

    at: float
    kind: Change
    group_id: str
    service: str


class ErrorTracker:
    """Groups exceptions; an :class:`~gateway.observers.Observer` and the alerting engine's
    :class:`~gateway.alerting.evaluation.ErrorGroupSource`."""

    def __init__(self, config: ErrorTrackingConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.groups: dict[str, ErrorGroup] = {}
        self.untracked = 0  # occurrences of new groups refused because max_groups were tracked
        self.occurrences = 0
        self.change_window = 10.0  # how long changed_groups() reports a change (alerting sets it)
        self._fingerprints: dict[tuple[str, str, str | None], Fingerprint] = {}
        self._message_prints: dict[tuple[str, str], Fingerprint] = {}
        self._counted: OrderedDict[tuple[bytes, str], _Held] = OrderedDict()
        self._unpaired: dict[tuple[str, str], tuple[_Waiting, _Waiting]] = {}
        self._holding: deque[_Held] = deque()  # the newest samples other reports may complete
        self._changes: deque[GroupChange] = deque(maxlen=10_000)
        self.dirty: set[str] = set()
        self.pending_samples: list[Sample] = []

    # --- ingest ------------------------------------------------------------------------------

    def observe(self, batch: Batch) -> None:
        """Record every exception in ``batch``."""
        found = occurrences(batch, self.clock())
        for occurrence in found:
            self.record(occurrence)

    def record(self, occurrence: Occurrence) -> ErrorGroup | None:
        """Count one occurrence in its group (created when new); None when not tracked."""
        self.occurrences += 1
        print_ = self._fingerprint(occurrence)
        group = self.groups.get(print_.id)
        origin = occurrence.origin
        now = self.clock()  # arrival: a client's wrong clock cannot age a group out
        if group is None:
            if len(self.groups) >= self.config.max_groups:
                self.untracked += 1
                return None
            group = self._new_group(print_, occurrence, now)
            self._changes.append(GroupChange(now, "new", group.id, origin.service))
        elif group.regresses(origin.version):
            group.status, group.regressed_at = "unresolved", now
            group.regressions += 1
            group.resolved_versions = []
            self._changes.append(GroupChange(now, "regression", group.id, origin.service))
        group.events += 1
        new, held = self._counts(occurrence, group.id)
        if new:
            group.count += 1
            group.counted(now)
        group.first_seen = min(group.first_seen, now)
        group.last_seen = max(group.last_seen, now)
        group.note(group.services, origin.service, now)
        group.note(group.versions, origin.version, now)
        group.note(group.environments, origin.environment, now)
        self.dirty.add(group.id)
        if new and self._sampling(group):
            held[0] = sample = self._sample(group, occurrence)
            self.pending_samples.append(sample)
            self._holding.append(held)
            if len(self._holding) > _SAMPLES_HELD:  # bounded memory: too old to complete
                self._holding.popleft()[0] = None
        elif not new and held[0] is not None and _complete(held[0], occurrence):
            sample = held[0]  # written again (by id) if it was written already
            if all(s.id != sample.id for s in self.pending_samples):
                self.pending_samples.append(sample)
        return group

    def _fingerprint(self, occurrence: Occurrence) -> Fingerprint:
        """The occurrence's fingerprint; parsed once per distinct :func:`_shape` of a stack."""
        kind, message = occurrence.type, occurrence.message
        stack = occurrence.stacktrace[: self.config.max_stacktrace_bytes]
        key = (kind, _shape(stack, message), occurrence.origin.language)
        found = self._fingerprints.get(key)
        if found is None:
            if len(self._fingerprints) >= _CACHE_SIZE:
                self._fingerprints.clear()
            parsed = parse_stacktrace(stack, occurrence.origin.language)
            found = fingerprint(kind, message, parsed, self.config.max_frames)
            self._fingerprints[key] = found
        if found.basis == "message":  # no frames: the message groups, not the stack's shape
            found = self._by_message(kind, message)
        return found

    def _by_message(self, kind: str, message: str) -> Fingerprint:
        """The fingerprint of a stackless exception, computed once per message with its
        digits masked (messages that differ only in numbers are one group anyway)."""
        key = (kind, _DIGITS.sub("#", message))
        found = self._message_prints.get(key)
        if found is None:
            if len(self._message_prints) >= _CACHE_SIZE:
                self._message_prints.clear()
            found = fingerprint(kind, message, _NO_FRAMES, self.config.max_frames)
            self._message_prints[key] = found
        return found

    def _new_group(self, print_: Fingerprint, occurrence: Occurrence, now: float) -> ErrorGroup:
        language = occurrence.origin.language or "unknown"
        if print_.basis == "stack":  # once per group
            stack = occurrence.stacktrace[: self.config.max_stacktrace_bytes]
            language = parse_stacktrace(stack, language).language
        group = ErrorGroup(
            id=print_.id,
            type=occurrence.type or "(no type)",
            message=normalise_message(occurrence.message),
            culprit=print_.culprit,
            language=language,
            basis=print_.basis,
            frames=[FrameInfo(f.file, f.function, f.module, f.line) for f in print_.frames],
            first_seen=now,
            last_seen=now,
        )
        self.groups[group.id] = group
        return group

    def _counts(self, occurrence: Occurrence, group_id: str) -> tuple[bool, _Held]:
        """Whether an occurrence is a new one, not another report of one already counted,
        and the holder of the sample of that one: a second report of the group in one trace
        is not new, and neither is a report without trace context that pairs with a traced
        one of the same group and service within ``PAIR_WINDOW`` seconds (a span event and
        the server's error log of one request)."""
        trace_id = occurrence.trace_id
        traced = any(trace_id)
        held: _Held = [None]
        if traced:
            key = (trace_id, group_id)
            known = self._counted.get(key)
            if known is not None:
                return False, known
            self._counted[key] = held
            if len(self._counted) > _TRACES_REMEMBERED:
                self._counted.popitem(last=False)
        at = occurrence.time
        pending = self._unpaired.get((group_id, occurrence.origin.service))
        if pending is None:
            pending = self._unpaired[(group_id, occurrence.origin.service)] = (
                deque(maxlen=_UNPAIRED_KEPT),
                deque(maxlen=_UNPAIRED_KEPT),
            )
        others = pending[0] if traced else pending[1]  # [0]: traceless, [1]: traced
        for i in range(len(others) - 1, -1, -1):  # newest first: twins arrive close together
            when, other = others[i]
            if abs(when - at) <= PAIR_WINDOW:
                del others[i]
                if traced:  # the trace's later reports are the pair's too
                    self._counted[(trace_id, group_id)] = other
                return False, other
        (pending[1] if traced else pending[0]).append((at, held))
        return True, held

    def _sampling(self, group: ErrorGroup) -> bool:
        now = self.clock()
        taken = group.samples_taken >= self.config.samples_per_group
        if taken and now - group.last_sample_at < self.config.sample_interval:
            return False
        group.samples_taken += 1
        group.last_sample_at = now
        return True

    def _sample(self, group: ErrorGroup, occurrence: Occurrence) -> Sample:
        origin = occurrence.origin
        trace_id = occurrence.trace_id.hex() if any(occurrence.trace_id) else None
        span_id = occurrence.span_id.hex() if any(occurrence.span_id) else None
        return Sample(
            group_id=group.id,
            time=occurrence.time,
            trace_id=trace_id,
            span_id=span_id,
            service=origin.service,
            version=origin.version,
            environment=origin.environment,
            source=occurrence.source,
            message=occurrence.message[:4096],
            stacktrace=occurrence.stacktrace[: self.config.max_stacktrace_bytes],
            attributes=occurrence.attributes(),
        )

    # --- operators and readers ---------------------------------------------------------------

    def set_status(self, group_id: str, status: Status, by: str | None) -> ErrorGroup | None:
        """Resolve, ignore or reopen a group; None when unknown."""
        group = self.groups.get(group_id)
        if group is None:
            return None
        group.set_status(status, self.clock(), by)
        self.dirty.add(group_id)
        return group

    def changed_groups(self, kind: Change) -> Sequence[Mapping[str, str]]:
        """The groups that appeared (``new``) or regressed within ``change_window`` seconds,
        as alert label sets."""
        since = self.clock() - self.change_window
        labels: dict[str, dict[str, str]] = {}
        for change in self._changes:
            if change.kind != kind or change.at < since:
                continue
            group = self.groups.get(change.group_id)
            if group is None or group.status == "ignored":
                continue
            labels[change.group_id] = {
                "service": change.service,
                "group": group.id,
                "exception_type": group.type,
                "culprit": group.culprit,
            }
        return list(labels.values())

    def take_changes(self) -> tuple[list[ErrorGroup], list[Sample]]:
        """The groups changed and the samples taken since the last call (for the store)."""
        groups = [self.groups[g] for g in sorted(self.dirty) if g in self.groups]
        samples, self.pending_samples = self.pending_samples, []
        self.dirty = set()
        return groups, samples

    def restore(self, groups: Sequence[ErrorGroup]) -> None:
        """Take groups loaded from the store (at start); counting goes on from them."""
        for group in groups:
            if group.id not in self.groups:
                self.groups[group.id] = group

    def forget_before(self, cutoff: float) -> list[str]:
        """Drop groups last seen before ``cutoff`` (retention); returns their ids."""
        gone = [g.id for g in self.groups.values() if g.last_seen < cutoff]
        for group_id in gone:
            del self.groups[group_id]
            self.dirty.discard(group_id)
        ids = set(gone)
        for key in [k for k in self._unpaired if k[0] in ids]:
            del self._unpaired[key]
        return gone
