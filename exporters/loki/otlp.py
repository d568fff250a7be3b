"""Fitting a logs batch to what Loki's native OTLP endpoint takes (``protocol: otlp``).

Loki turns OTLP log records into entries itself: a list of resource attributes become stream
labels, the rest structured metadata. What its default limits refuse, the push mapping
(:mod:`exporters.loki.mapping`) already adapts; here the same is done to the OTLP request:

* a key that normalises to nothing (empty, ``.``, ``_``...) makes Loki refuse the whole request
  with a 400: the attribute is dropped;
* a line over ``max_line_size`` (256 KiB) loses its entry: a string body is cut at a character
  boundary;
* more than 128 structured-metadata pairs or 64 KiB of them lose the entry: the record's own
  attributes past the limit are dropped (resource and scope attributes count first);
* a label value over 2048 bytes loses the stream: the values of Loki's default label
  attributes are cut.

Only a batch that needs a change is copied; the others are forwarded as received. Every change
is counted by reason, as for push mode.
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from exporters.loki.mapping import (
    LOKI_OTLP_LABELS,
    MAX_LABEL_VALUE_BYTES,
    MAX_METADATA_BYTES,
    MAX_METADATA_ENTRIES,
    Adjustments,
    label_name,
)
from gateway.otlp.batch import Batch


def fit_for_loki(batch: Batch, max_line_bytes: int, adjusted: Adjustments) -> Batch:
    """``batch``, or a changed copy of it that Loki's OTLP endpoint takes whole."""
    request = batch.request
    assert isinstance(request, ExportLogsServiceRequest)
    if not _fit(request, max_line_bytes, Adjustments(), dry_run=True):
        return batch
    copy = batch.copy()
    assert isinstance(copy.request, ExportLogsServiceRequest)
    _fit(copy.request, max_line_bytes, adjusted, dry_run=False)
    copy.mark_modified()
    return copy


def _fit(
    request: ExportLogsServiceRequest, max_line: int, adjusted: Adjustments, *, dry_run: bool
) -> bool:
    """Whether anything needs changing; changes it in place unless ``dry_run``."""
    changed = False
    for rl in request.resource_logs:
        attrs = rl.resource.attributes
        changed |= _drop_bad_keys(attrs, adjusted, dry_run)
        for kv in attrs:
            if kv.key in LOKI_OTLP_LABELS:
                changed |= _cut(kv.value, MAX_LABEL_VALUE_BYTES, "label_value_truncated",
                                adjusted, dry_run)  # fmt: skip
        shared = [kv for kv in attrs if kv.key not in LOKI_OTLP_LABELS]
        for sl in rl.scope_logs:
            changed |= _drop_bad_keys(sl.scope.attributes, adjusted, dry_run)
            base = [*shared, *sl.scope.attributes]
            base_size = sum(_size(kv) for kv in base)
            for record in sl.log_records:
                changed |= _drop_bad_keys(record.attributes, adjusted, dry_run)
                changed |= _cut(record.body, max_line, "line_truncated", adjusted, dry_run)
                keep = _metadata_room(record.attributes, len(base), base_size)
                if keep < len(record.attributes):
                    changed = True
                    adjusted["metadata_truncated"] += 1
                    if not dry_run:
                        del record.attributes[keep:]
    return changed


def _drop_bad_keys(attrs: Iterable[KeyValue], adjusted: Adjustments, dry_run: bool) -> bool:
    bad = [i for i, kv in enumerate(attrs) if not label_name(kv.key)]
    adjusted["name_dropped"] += len(bad)
    if not dry_run:
        for i in reversed(bad):
            del attrs[i]  # type: ignore[attr-defined]  # a repeated field
    return bool(bad)


def _metadata_room(attrs: Iterable[KeyValue], count: int, size: int) -> int:
    """How many of ``attrs`` fit after ``count`` pairs of ``size`` bytes already there."""
    kept = 0
    for kv in attrs:
        count += 1
        size += _size(kv)
        if count > MAX_METADATA_ENTRIES or size > MAX_METADATA_BYTES:
            break
        kept += 1
    return kept


def _size(kv: KeyValue) -> int:
    return len(kv.key.encode()) + kv.value.ByteSize()


def _cut(value: AnyValue, limit: int, reason: str, adjusted: Adjustments, dry_run: bool) -> bool:
    """Cut a string ``value`` over ``limit`` bytes at a character boundary; whether it was."""
    if value.WhichOneof("value") != "string_value":
        return False
    data = value.string_value.encode()
    if len(data) <= limit:
        return False
    adjusted[reason] += 1
    if not dry_run:
        value.string_value = data[:limit].decode("utf-8", "ignore")
    return True
