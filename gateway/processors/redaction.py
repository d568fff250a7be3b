"""The ``redaction`` processor: drop or mask attributes and log bodies that carry secrets.

Services that use :mod:`instrumentation.masking` mask their own data; this catches the ones
that do not. Per attribute key, the first rule that applies wins:

1. ``ignored_keys``: left as received (not even scanned).
2. ``blocked_keys``: the attribute is dropped (``reason="blocked_key"``).
3. ``allowed_keys`` (when given): an attribute not in the list is dropped
   (``reason="not_allowed"``; top-level attributes only, not keys inside map values).
4. ``masked_keys``, then keys named like a secret (the ``password`` pattern,
   :func:`~gateway.processors.redaction_patterns.is_secret_key`): the value is replaced by
   ``mask`` (each string of an array or map value).
5. Otherwise every string inside the value is scanned by the value patterns, which mask only
   what they match (:mod:`gateway.processors.redaction_patterns`).

Key lists are globs (``*`` any characters, ``?`` one), matched against the whole key,
ignoring case. Rules 1, 2, 4 and 5 also apply to the keys and values of maps nested in
values and in log bodies. What was masked is counted in
``otelgate_redaction_masked_total{processor,rule}``, dropped attributes in
``otelgate_redaction_dropped_total{processor,reason}``.

The received bytes stay valid (and are forwarded as they are) when nothing changed; when only
resources changed, the new resources are spliced into them; otherwise they are dropped and the
exporters encode the changed request.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from prometheus_client import CollectorRegistry

from gateway.otlp.batch import Batch, Signal, resources_of
from gateway.otlp.validation import remove_indices
from gateway.otlp.wire import WireError, replace_resources
from gateway.processors.redaction_config import SCOPES, RedactionProcessorConfig, scanner_of
from gateway.processors.redaction_keys import (
    BLOCK,
    IGNORE,
    MASK_KEY,
    SCAN,
    SECRET_KEY,
    KeyRules,
)
from gateway.processors.redaction_metrics import redaction_counters
from gateway.processors.redaction_patterns import BUILTIN_PATTERNS, ValueScanner
from gateway.registry import ALL_SIGNALS, ComponentFactory, Host

MASKED_COUNT = "redaction.masked.count"
DROPPED_COUNT = "redaction.dropped.count"

_NESTED = ("kvlist_value", "array_value")
_MAX_DEPTH = 64  # deeper than ingest accepts (docs/limits.md); a deeper value is masked whole
_CLEAN_RESOURCES = 1024  # resources found clean, remembered by their encoding (bounded)
_CLEAN_RESOURCE_BYTES = 16384
_DATA_POINT_KINDS = ("gauge", "sum", "histogram", "exponential_histogram", "summary")


def _never(text: str) -> None:
    return None


class RedactionProcessor:
    """Drops and masks attributes, log bodies and span status messages in place."""

    mutates = True

    def __init__(
        self,
        name: str,
        keys: KeyRules,
        scanner: ValueScanner,
        *,
        scopes: Iterable[str] = SCOPES,
        log_bodies: bool = True,
        summary: bool = False,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.name = name
        self.keys = keys
        self.scanner = scanner
        self.scopes = frozenset(scopes)
        self.log_bodies = log_bodies
        self.summary = summary
        self._scan = scanner.scan if scanner.active else _never
        self._resource_scope = "resource" in self.scopes
        self._item_signals = {  # the signals whose items there is something to do for
            signal
            for signal, needed in (
                (Signal.TRACES, bool(self.scopes & {"span", "event", "link"})),
                (Signal.LOGS, "log" in self.scopes or log_bodies),
                (Signal.METRICS, "metric" in self.scopes),
            )
            if needed
        }
        self._dropped: dict[str, int] = {}
        self._n_dropped = 0
        self._clean_resources: set[bytes] = set()
        masked, dropped = redaction_counters(
            registry if registry is not None else CollectorRegistry()
        )
        self._masked_counter, self._dropped_counter = masked, dropped
        for rule in (*BUILTIN_PATTERNS, "blocked_value", "key", "too_long"):  # visible from 0
            masked.labels(name, rule)
        for reason in ("blocked_key", "not_allowed"):
            dropped.labels(name, reason)

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""

    # -- values ----------------------------------------------------------------------------

    def _count(self, rule: str) -> None:
        masked = self.scanner.masked
        masked[rule] = masked.get(rule, 0) + 1
        self.scanner.total += 1

    def _mask_whole(self, value: AnyValue, depth: int = 0) -> bool:
        """Replace every scalar inside ``value`` by the mask; True if anything changed."""
        kind = value.WhichOneof("value")
        if kind is None:
            return False
        if kind == "kvlist_value" and depth < _MAX_DEPTH:
            changed = False
            for kv in value.kvlist_value.values:
                changed |= self._mask_whole(kv.value, depth + 1)
            return changed
        if kind == "array_value" and depth < _MAX_DEPTH:
            changed = False
            for item in value.array_value.values:
                changed |= self._mask_whole(item, depth + 1)
            return changed
        mask = self.scanner.mask
        if kind == "string_value" and value.string_value == mask:
            return False
        value.string_value = mask  # ints, bools, bytes too: a secret's type is no secret
        return True

    def _value(self, value: AnyValue, depth: int) -> bool:
        """Scan the strings inside ``value``; True if anything changed."""
        text = value.string_value
        if text:
            new = self._scan(text)
            if new is None:
                return False
            value.string_value = new
            return True
        kind = value.WhichOneof("value")
        if kind not in _NESTED:
            return False
        if depth >= _MAX_DEPTH:  # never from a receiver (ingest nesting limits)
            self._count("nesting")
            return self._mask_whole(value, _MAX_DEPTH)
        if kind == "kvlist_value":
            return self._attributes(value.kvlist_value.values, depth + 1)
        changed = False
        for item in value.array_value.values:
            changed |= self._value(item, depth + 1)
        return changed

    def _attributes(self, attributes: Any, depth: int = 0) -> bool:
        """Apply the key rules and value patterns to a list of ``KeyValue`` (top level at
        ``depth`` 0, a map inside a value or body deeper); True if anything changed."""
        # Runs for every attribute received: written for CPython (locals, no call for a key
        # seen before or a string found clean before).
        keys = self.keys
        actions, nested = (keys.nested, True) if depth else (keys.cache, False)
        scanner = self.scanner
        clean, shortest, scan = scanner.clean, scanner.min_len, self._scan
        changed = False
        drop: list[int] | None = None
        index = -1
        for kv in attributes:
            index += 1
            action = actions.get(kv.key)
            if action is None:
                action = keys.action(kv.key, nested)
            if action == SCAN:
                value = kv.value
                text = value.string_value
                if text:
                    if len(text) >= shortest and text not in clean:
                        new = scan(text)
                        if new is not None:
                            value.string_value = new
                            changed = True
                elif value.WhichOneof("value") in _NESTED:
                    changed |= self._value(value, depth)
            elif action == IGNORE:
                continue
            elif action in (MASK_KEY, SECRET_KEY):
                if self._mask_whole(kv.value):
                    self._count("key" if action == MASK_KEY else "password")
                    changed = True
            else:
                reason = "blocked_key" if action == BLOCK else "not_allowed"
                self._dropped[reason] = self._dropped.get(reason, 0) + 1
                self._n_dropped += 1
                if drop is None:
                    drop = []
                drop.append(index)
        if drop:
            remove_indices(attributes, drop)
            changed = True
        return changed

    def _summarize(self, attributes: Any, masked: int, dropped: int) -> None:
        """Add the counts to an item's attributes (to the ones an earlier gateway added)."""
        for key, count in ((MASKED_COUNT, masked), (DROPPED_COUNT, dropped)):
            if count:
                found = next((kv for kv in attributes if kv.key == key), None)
                if found is None:
                    attributes.append(KeyValue(key=key, value=AnyValue(int_value=count)))
                else:
                    found.value.int_value = found.value.int_value + count

    # -- signals ---------------------------------------------------------------------------

    def _spans(self, request: ExportTraceServiceRequest) -> bool:
        scopes = self.scopes
        spans, events, links = "span" in scopes, "event" in scopes, "link" in scopes
        attributes, scanner, summary = self._attributes, self.scanner, self.summary
        changed = False
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    masked, dropped = scanner.total, self._n_dropped
                    if spans:
                        if attributes(span.attributes):
                            changed = True
                        if span.HasField("status"):
                            message = span.status.message
                            if message:
                                new = self._scan(message)
                                if new is not None:
                                    span.status.message = new
                                    changed = True
                    if events:
                        for event in span.events:
                            if attributes(event.attributes):
                                changed = True
                    if links:
                        for link in span.links:
                            if attributes(link.attributes):
                                changed = True
                    if summary:
                        self._summarize(
                            span.attributes, scanner.total - masked, self._n_dropped - dropped
                        )
        return changed

    def _logs(self, request: ExportLogsServiceRequest) -> bool:
        logs, bodies = "log" in self.scopes, self.log_bodies
        attributes, scanner, summary = self._attributes, self.scanner, self.summary
        changed = False
        for rl in request.resource_logs:
            for sl in rl.scope_logs:
                for record in sl.log_records:
                    masked, dropped = scanner.total, self._n_dropped
                    if logs and attributes(record.attributes):
                        changed = True
                    if bodies and record.HasField("body") and self._value(record.body, 0):
                        changed = True
                    if summary:
                        self._summarize(
                            record.attributes, scanner.total - masked, self._n_dropped - dropped
                        )
        return changed

    def _metrics(self, request: ExportMetricsServiceRequest) -> bool:
        attributes = self._attributes
        changed = False
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    kind = metric.WhichOneof("data")
                    if kind not in _DATA_POINT_KINDS:
                        continue
                    exemplars = kind != "summary"  # summary points have none
                    for point in getattr(metric, kind).data_points:
                        if attributes(point.attributes):
                            changed = True
                        if exemplars:
                            for exemplar in point.exemplars:
                                if attributes(exemplar.filtered_attributes):
                                    changed = True
        return changed

    def _resources(self, batch: Batch) -> bool:
        """Redact every resource not seen clean before; True if any changed."""
        clean = self._clean_resources
        changed = False
        for resource in resources_of(batch):
            if not resource.attributes:
                continue
            encoded = resource.SerializeToString()
            if encoded in clean:
                continue
            if self._attributes(resource.attributes):
                changed = True
            elif len(encoded) <= _CLEAN_RESOURCE_BYTES:
                if len(clean) >= _CLEAN_RESOURCES:
                    clean.clear()
                clean.add(encoded)
        return changed

    def process(self, batch: Batch) -> Batch:
        request = batch.request
        changed = False
        if batch.signal not in self._item_signals:
            pass
        elif isinstance(request, ExportTraceServiceRequest):
            changed = self._spans(request)
        elif isinstance(request, ExportLogsServiceRequest):
            changed = self._logs(request)
        else:
            assert isinstance(request, ExportMetricsServiceRequest)
            changed = self._metrics(request)
        resources = self._resource_scope and self._resources(batch)
        self._flush_counts()
        if batch.encoded is not None:
            if changed:
                batch.encoded = None
            elif resources:
                # Only resources changed: splice them into the received bytes rather than
                # encoding every item again (as the resource processor does).
                try:
                    batch.encoded = replace_resources(
                        batch.encoded, [r.SerializeToString() for r in resources_of(batch)]
                    )
                except WireError:
                    batch.encoded = None
        return batch

    def _flush_counts(self) -> None:
        masked, dropped = self.scanner.masked, self._dropped
        if masked:
            for rule, count in masked.items():
                self._masked_counter.labels(self.name, rule).inc(count)
            masked.clear()
        if dropped:
            for reason, count in dropped.items():
                self._dropped_counter.labels(self.name, reason).inc(count)
            dropped.clear()


def create_redaction(name: str, config: RedactionProcessorConfig, host: Host) -> RedactionProcessor:
    """The processor of a ``redaction`` entry."""
    keys = KeyRules(
        allowed=config.allowed_keys,
        blocked=config.blocked_keys,
        masked=config.masked_keys,
        ignored=config.ignored_keys,
        secret_names="password" in config.patterns,
    )
    return RedactionProcessor(
        name,
        keys,
        scanner_of(config),
        scopes=config.scopes,
        log_bodies=config.log_bodies,
        summary=config.summary,
        registry=host.metrics.registry,
    )


FACTORY = ComponentFactory(
    kind="processor",
    type_name="redaction",
    config=RedactionProcessorConfig,
    signals=ALL_SIGNALS,
    create=create_redaction,
    example={"masked_keys": ["authorization"], "blocked_values": [r"\bSSN-\d{3}-\d{2}-\d{4}\b"]},
)
