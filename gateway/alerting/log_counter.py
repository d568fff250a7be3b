"""Counts log records for ``log_count`` rules: an observer of accepted logs.

The ingest path pays one check per logs batch when no rule has a ``log_count`` condition.
Records count when they arrive, in buckets of a tenth of the rule's window (at most 10 s),
kept for the window. A record without a severity number is judged by its severity text
(``ERROR``...).
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from gateway.alerting.conditions import LOG_SEVERITIES, LogCount
from gateway.alerting.rules import RuleConfig
from gateway.otlp.batch import Batch, Signal
from gateway.otlp.builders import service_name

MAX_BUCKET_SECONDS = 10.0
MIN_BUCKET_SECONDS = 0.1
_TEXT_SEVERITY = {
    "TRACE": 1,
    "DEBUG": 5,
    "INFO": 9,
    "WARN": 13,
    "WARNING": 13,
    "ERROR": 17,
    "CRITICAL": 21,
    "FATAL": 21,
}


@dataclass(slots=True)
class _Counted:
    spec: LogCount
    service: str | None
    minimum: int
    pattern: re.Pattern[str] | None
    width: float
    buckets: dict[str, deque[list[float]]] = field(default_factory=dict)  # service -> [t, n]


def _body(record: LogRecord) -> str:
    body = record.body
    kind = body.WhichOneof("value")
    if kind == "string_value":
        return body.string_value
    return "" if kind is None else str(getattr(body, kind))


class LogCounter:
    """Log records per ``log_count`` rule and service, over each rule's window."""

    def __init__(self, rules: Sequence[RuleConfig], clock: Callable[[], float] = time.time):
        self.clock = clock
        self._rules: dict[str, _Counted] = {}
        self.replace_rules(rules)

    @property
    def active(self) -> bool:
        """Whether any rule counts logs."""
        return bool(self._rules)

    def replace_rules(self, rules: Sequence[RuleConfig]) -> None:
        """Count for these rules; counts of rules whose condition is unchanged carry over."""
        old, self._rules = self._rules, {}
        for rule in rules:
            spec = rule.condition.log_count
            if spec is None or not rule.enabled:
                continue
            service = None if rule.service in (None, "*") else rule.service
            kept = old.get(rule.name)
            if kept is not None and (kept.spec, kept.service) == (spec, service):
                self._rules[rule.name] = kept
                continue
            pattern = re.compile(spec.match) if spec.match else None
            width = min(MAX_BUCKET_SECONDS, max(MIN_BUCKET_SECONDS, spec.window / 10))
            minimum = LOG_SEVERITIES[spec.severity]
            self._rules[rule.name] = _Counted(spec, service, minimum, pattern, width)

    def observe(self, batch: Batch) -> None:
        """Count the matching records of a logs batch."""
        if batch.signal is not Signal.LOGS or not self._rules:
            return
        request = batch.request
        assert isinstance(request, ExportLogsServiceRequest)
        now = self.clock()
        rules = list(self._rules.values())
        text_level = _TEXT_SEVERITY.get
        for resource_logs in request.resource_logs:
            service = service_name(resource_logs.resource)
            wanted = [c for c in rules if c.service in (None, service)]
            if not wanted:
                continue
            # One pass reads every record's level; each rule then looks at the severe ones.
            lowest = min(c.minimum for c in wanted)
            severe = [
                (level, record)
                for scope_logs in resource_logs.scope_logs
                for record in scope_logs.log_records
                if (level := record.severity_number or text_level(record.severity_text.upper(), 0))
                >= lowest
            ]
            if not severe:
                continue
            for counted in wanted:
                chosen = [r for level, r in severe if level >= counted.minimum]
                pattern = counted.pattern
                n = (
                    len(chosen)
                    if pattern is None
                    else sum(1 for r in chosen if pattern.search(_body(r)))
                )
                if n:
                    self._add(counted, service, now - now % counted.width, n)

    def _add(self, counted: _Counted, service: str, slot: float, n: int) -> None:
        buckets = counted.buckets.setdefault(service, deque())
        if buckets and buckets[-1][0] == slot:
            buckets[-1][1] += n
        else:
            buckets.append([slot, float(n)])
        # Drop buckets wholly outside the window only (``counts`` counts a bucket while any
        # of it is inside): a bucket's records may be younger than its start by ``width``.
        while buckets and buckets[0][0] + counted.width <= slot - counted.spec.window:
            buckets.popleft()

    def counts(self, rule: RuleConfig) -> dict[str, float]:
        """Records per service within the rule's window (services with none left out)."""
        counted = self._rules.get(rule.name)
        if counted is None:
            return {}
        oldest = self.clock() - counted.spec.window
        found = {}
        for service, buckets in list(counted.buckets.items()):
            total = sum(n for t, n in list(buckets) if t + counted.width > oldest)
            if total:
                found[service] = total
            else:
                del counted.buckets[service]
        return found
