"""The ``resource`` processor: insert, update, upsert or delete resource attributes.

Shaped like the Collector's resource processor, so gateway-level enrichment such as
``deployment.environment`` is one config entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from gateway.config.values import (
    StrictModel,
)
from gateway.otlp.batch import Batch, resources_of
from gateway.otlp.wire import WireError, replace_resources
from gateway.registry import ALL_SIGNALS, ComponentFactory, Host

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


def _apply(resource: Resource, actions: Sequence[AttributeAction]) -> None:
    attributes = resource.attributes
    for act in actions:
        index = next((i for i, kv in enumerate(attributes) if kv.key == act.key), None)
        if act.action == "delete":
            if index is not None:
                del attributes[index]
            continue
        assert act.value is not None
        if index is None and act.action in ("insert", "upsert"):
            attributes.append(KeyValue(key=act.key, value=any_value(act.value)))
        elif index is not None and act.action in ("update", "upsert"):
            attributes[index].value.CopyFrom(any_value(act.value))


class ResourceProcessor:
    """Applies attribute actions to the resource of every item in a batch."""

    mutates = True

    def __init__(self, name: str, actions: Sequence[AttributeAction]) -> None:
        self.name = name
        self.actions = tuple(actions)

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""

    def process(self, batch: Batch) -> Batch:
        resources = list(resources_of(batch))
        for resource in resources:
            _apply(resource, self.actions)
        if batch.encoded is not None:
            # Splice the re-encoded resources into the received bytes instead of encoding
            # every item again (see gateway/wire.py); the item count is unchanged.
            try:
                batch.encoded = replace_resources(
                    batch.encoded, [r.SerializeToString() for r in resources]
                )
            except WireError:  # framing this module does not read (e.g. groups): re-encode
                batch.encoded = None
        return batch


class ResourceAction(StrictModel):
    """One resource attribute change; ``value`` is required except for ``delete``."""

    key: str = Field(min_length=1)
    value: str | bool | int | float | None = None
    action: Literal["insert", "upsert", "update", "delete"]

    @field_validator("value", mode="before")
    @classmethod
    def _scalar(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, str | bool | int | float):
            raise ValueError("must be a string, number or boolean")
        return value

    @model_validator(mode="after")
    def _value_needed(self) -> ResourceAction:
        if (self.value is None) != (self.action == "delete"):
            need = "must not be given" if self.action == "delete" else "is required"
            raise ValueError(f"value {need} for action '{self.action}'")
        return self


class ResourceProcessorConfig(StrictModel):
    """The ``resource`` processor: attribute changes applied in order."""

    attributes: list[ResourceAction] = Field(min_length=1)


def create_resource(name: str, config: ResourceProcessorConfig, host: Host) -> ResourceProcessor:
    """The processor of a ``resource`` entry."""
    return ResourceProcessor(
        name, [AttributeAction(a.key, a.action, a.value) for a in config.attributes]
    )


FACTORY = ComponentFactory(
    kind="processor",
    type_name="resource",
    config=ResourceProcessorConfig,
    signals=ALL_SIGNALS,
    create=create_resource,
    example={
        "attributes": [{"key": "deployment.environment", "value": "example", "action": "upsert"}]
    },
)
