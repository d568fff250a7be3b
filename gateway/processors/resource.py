"""The ``resource`` processor: insert, update, upsert or delete resource attributes.

Shaped like the Collector's resource processor, so gateway-level enrichment such as
``deployment.environment`` is one config entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from gateway.config.values import (
    StrictModel,
)
from gateway.otlp.batch import Batch
from gateway.otlp.resource_attributes import AttributeAction, set_resource_attributes
from gateway.registry import ALL_SIGNALS, ComponentFactory, Host

__all__ = ["AttributeAction", "ResourceProcessor", "ResourceProcessorConfig"]


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
        return set_resource_attributes(batch, self.actions)


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
