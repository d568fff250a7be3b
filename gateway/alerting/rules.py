"""Alert rules as configuration: a name, an optional service, one condition, timing, severity,
labels and annotations with ``{{ service }}`` / ``{{ value }}`` placeholders."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator, model_validator

from gateway.alerting.alerts import Severity
from gateway.alerting.conditions import Condition
from gateway.config.values import Duration, StrictModel

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_LABELS = frozenset({"alertname", "severity", "service"})
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}")
PLACEHOLDERS = ("service", "value", "threshold", "rule", "severity")


class RuleConfig(StrictModel):
    """One alert rule (docs/alerting.md#rules)."""

    name: str
    service: str | None = None  # a service name, or "*": one alert per service
    condition: Condition
    for_: Duration = Field(default=0.0, alias="for")
    keep_firing_for: Duration = 0.0
    severity: Severity = "warning"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.fullmatch(value):
            raise ValueError(f"'{value}' is not a valid rule name (letters, digits, _)")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not LABEL.fullmatch(key) or key.startswith("__"):
                raise ValueError(f"'{key}' is not a valid label name")
            if key in RESERVED_LABELS:
                raise ValueError(f"label '{key}' is set by the rule itself")
        return value

    @field_validator("annotations")
    @classmethod
    def _templates(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            for found in PLACEHOLDER.findall(text):
                if found not in PLACEHOLDERS and not found.startswith("labels."):
                    known = ", ".join(f"{{{{ {p} }}}}" for p in PLACEHOLDERS)
                    raise ValueError(
                        f"annotation '{key}': unknown placeholder '{{{{ {found} }}}}' "
                        f"(known: {known}, {{{{ labels.NAME }}}})"
                    )
        return value

    @model_validator(mode="after")
    def _service(self) -> RuleConfig:
        if self.service is not None and not self.condition.per_service:
            raise ValueError(
                f"'service' applies to service conditions only, not {self.condition.kind}"
            )
        if self.condition.per_service and self.service is None:
            self.service = "*"
        return self


def render(template: str, values: Mapping[str, str], labels: Mapping[str, str]) -> str:
    """``template`` with its placeholders filled (an unknown label becomes empty)."""

    def fill(match: re.Match[str]) -> str:
        key = match[1]
        if key.startswith("labels."):
            return labels.get(key.removeprefix("labels."), "")
        return values.get(key, "")

    return PLACEHOLDER.sub(fill, template)


class DefaultRulesConfig(StrictModel):
    """The built-in rules: on by default; disable some by name or change their settings."""

    enabled: bool = True
    disable: list[str] = Field(default_factory=list)
    override: dict[str, dict[str, Any]] = Field(default_factory=dict)
