"""Configuration of ``alerting:``: evaluation, rules (inline, rule files, the defaults),
receivers and the route tree (Alertmanager's semantics), delivery and history."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PrivateAttr, field_validator

from gateway.alerting.matchers import Matcher, parse_matcher
from gateway.alerting.notifiers.config import ReceiverConfig
from gateway.alerting.rules import DefaultRulesConfig, RuleConfig
from gateway.config.values import Duration, StrictModel, parse_window

Window = Annotated[float, BeforeValidator(parse_window)]


class EscalationStep(StrictModel):
    """Notify more receivers about alerts still unacknowledged ``after`` they fired."""

    after: Duration = Field(gt=0)
    receivers: list[str] = Field(min_length=1)


class RouteConfig(StrictModel):
    """A node of the route tree. Children inherit what they leave out (Alertmanager)."""

    receiver: str | None = None
    matchers: list[str] = Field(default_factory=list)
    group_by: list[str] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = Field(default=None, gt=0)
    repeat_interval: Duration | None = Field(default=None, gt=0)
    continue_: bool = Field(default=False, alias="continue")
    escalation: list[EscalationStep] | None = None
    routes: list[RouteConfig] = Field(default_factory=list)

    @field_validator("matchers")
    @classmethod
    def _matchers(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_matcher(text)
        return value

    def parsed_matchers(self) -> list[Matcher]:
        """The matchers, parsed."""
        return [parse_matcher(text) for text in self.matchers]


class DeliveryConfig(StrictModel):
    """Retries of a notification that could not be delivered (exponential backoff)."""

    initial_interval: Duration = Field(default=1.0, gt=0)
    max_interval: Duration = Field(default=60.0, gt=0)
    max_elapsed_time: Duration = Field(default=3600.0, gt=0)


class AlertingConfig(StrictModel):
    """The ``alerting`` section (docs/alerting.md)."""

    enabled: bool = True
    evaluation_interval: Duration = Field(default=5.0, gt=0)
    resend_interval: Duration = Field(default=60.0, gt=0)  # re-posts to Alertmanager
    external_url: str | None = None  # default: http://<admin endpoint>
    restart_grace: Duration = Field(default=60.0, ge=0)  # open alerts kept after a restart
    runbook_base_url: str | None = None  # replaces docs/runbooks.md in the default rules
    retention: Window = Field(default=90 * 86400.0, gt=0)
    rule_files: list[str] = Field(default_factory=list)
    default_rules: DefaultRulesConfig = DefaultRulesConfig()
    rules: list[RuleConfig] = Field(default_factory=list)
    receivers: dict[str, ReceiverConfig] = Field(default_factory=dict)
    route: RouteConfig | None = None
    delivery: DeliveryConfig = DeliveryConfig()
    # Set by the config loader: the rules resolved from defaults, inline rules and rule files.
    _resolved_rules: list[RuleConfig] | None = PrivateAttr(default=None)

    @property
    def resolved_rules(self) -> list[RuleConfig] | None:
        """The rules the loader resolved (None for a config built without the loader)."""
        return self._resolved_rules

    def use_rules(self, rules: list[RuleConfig]) -> None:
        """Remember the resolved rules."""
        self._resolved_rules = rules

    @field_validator("external_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"'{value}' must be an http:// or https:// URL")
        return value

    @field_validator("rule_files", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value
