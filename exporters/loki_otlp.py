"""Fitting a logs batch to what Loki's native OTLP endpoint takes (``protocol: otlp``).

Loki turns OTLP log records into entries itself: a list of resource attributes become stream
labels, the rest structured metadata. What its default limits refuse, the push mapping
(:mod:`exporters.loki_mapping`) already adapts; here the same is done to the OTLP request:

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
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from exporters.loki_mapping import (
    LOKI_OTLP_LABELS,
    MAX_LABEL_VALUE_BYTES,
    MAX_METADATA_BYTES,
    MAX_METADATA_ENTRIES,
    Adjustments,
    label_name,
)
from gateway.batch import Batch


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
            value = kv.value
            if kv.key in LOKI_OTLP_LABELS and value.WhichOneof("value") == "string_value":
                cut = _cut(value.string_value, MAX_LABEL_VALUE_BYTES)
                if cut is not None:
                    changed = True
                    adjusted["label_value_truncated"] += 1
                    if not dry_run:
                        value.string_value = cut
        shared = [kv for kv in attrs if kv.key not in LOKI_OTLP_LABELS]
        for sl in rl.scope_logs:
            changed |= _drop_bad_keys(sl.scope.attributes, adjusted, dry_run)
            base = [*shared, *sl.scope.attributes]
            base_size = sum(_size(kv) for kv in base)
            for record in sl.log_records:
                changed |= _drop_bad_keys(record.attributes, adjusted, dry_run)
                body = record.body
                if body.WhichOneof("value") == "string_value":
                    cut = _cut(body.string_value, max_line)
                    if cut is not None:
                        changed = True
                        adjusted["line_truncated"] += 1
                        if not dry_run:
                            body.string_value = cut
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


def _cut(text: str, limit: int) -> str | None:
    """``text`` cut to ``limit`` bytes at a character boundary, or None if it fits."""
    data = text.encode()
    if len(data) <= limit:
        return None
    return data[:limit].decode("utf-8", "ignore")
