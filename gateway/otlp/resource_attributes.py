"""Setting resource attributes on every resource of a batch, keeping its received bytes.

Used by the ``resource`` processor and by authentication (the caller's name and tenant).
The re-encoded resources are spliced into the received bytes (:mod:`gateway.otlp.wire`), so
the items are not encoded again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from gateway.otlp.batch import Batch, resources_of
from gateway.otlp.wire import WireError, replace_resources

Action = Literal["insert", "update", "upsert", "delete"]
AttributeValue = str | int | float | bool


@dataclass(frozen=True, slots=True)
class AttributeAction:
    """One change to apply to every resource."""

    key: str
    action: Action
    value: AttributeValue | None = None


def any_value(value: AttributeValue) -> AnyValue:
    """An OTLP ``AnyValue`` holding a Python scalar."""
    if isinstance(value, bool):  # before int: bool is an int in Python
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def apply_actions(resource: Resource, actions: Sequence[AttributeAction]) -> None:
    """Apply ``actions`` to one resource, in order. ``delete`` removes every attribute with
    the key (a client may send one twice); the others act on its first occurrence."""
    attributes = resource.attributes
    for act in actions:
        if act.action == "delete":
            for found in reversed([i for i, kv in enumerate(attributes) if kv.key == act.key]):
                del attributes[found]
            continue
        index = next((i for i, kv in enumerate(attributes) if kv.key == act.key), None)
        assert act.value is not None
        if index is None and act.action in ("insert", "upsert"):
            attributes.append(KeyValue(key=act.key, value=any_value(act.value)))
        elif index is not None and act.action in ("update", "upsert"):
            attributes[index].value.CopyFrom(any_value(act.value))


def set_resource_attributes(batch: Batch, actions: Sequence[AttributeAction]) -> Batch:
    """Apply ``actions`` to every resource of ``batch`` (in place), keeping ``encoded``
    valid by splicing when it can."""
    resources = list(resources_of(batch))
    for resource in resources:
        apply_actions(resource, actions)
    if batch.encoded is not None:
        try:
            batch.encoded = replace_resources(
                batch.encoded, [r.SerializeToString() for r in resources]
            )
        except WireError:  # framing this module does not read (e.g. groups): re-encode
            batch.encoded = None
    return batch
