"""The ``slos`` section: inline SLOs and ``openslo: FILE`` entries, names unique across both."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    RootModel,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)

from gateway.slo.config import SloConfig
from gateway.slo.openslo import OpenSloFile


def _slo_entry(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    if isinstance(value, dict) and "openslo" in value:
        return OpenSloFile.model_validate(value)
    return SloConfig.model_validate(value)


class SloList(RootModel[list[Annotated[SloConfig | OpenSloFile, WrapValidator(_slo_entry)]]]):
    """The ``slos`` section: inline SLOs and ``openslo: FILE`` entries."""

    @model_validator(mode="before")
    @classmethod
    def _null_is_empty(cls, data: Any) -> Any:
        return [] if data is None or data == {} else data

    @model_validator(mode="after")
    def _unique_names(self) -> SloList:
        seen: dict[str, int] = {}
        for index, entry in enumerate(self.root):
            for slo in entry.slos if isinstance(entry, OpenSloFile) else [entry]:
                if slo.name in seen:
                    first = seen[slo.name]
                    raise ValueError(f"SLO name '{slo.name}' is defined twice (slos[{first}] "
                                     f"and slos[{index}])")  # fmt: skip
                seen[slo.name] = index
        return self

    def definitions(self) -> list[SloConfig]:
        """Every SLO, inline and from OpenSLO files, in order."""
        found: list[SloConfig] = []
        for entry in self.root:
            found.extend(entry.slos if isinstance(entry, OpenSloFile) else [entry])
        return found
