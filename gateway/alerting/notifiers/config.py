"""Configuration of ``alerting.receivers``: a receiver is a name and one or more integrations."""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field, field_validator, model_validator

from gateway.config.values import Duration, StrictModel

DEFAULT_TIMEOUT = 10.0


class WebhookConfig(StrictModel):
    """POSTs Alertmanager's webhook payload (version 4) to ``url``."""

    url: AnyHttpUrl
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Duration = Field(default=DEFAULT_TIMEOUT, gt=0)
    max_alerts: int = Field(default=0, ge=0)  # 0: all; else the rest are counted in truncatedAlerts


class AlertmanagerConfig(StrictModel):
    """Sends alerts to an Alertmanager's v2 API (``<endpoint>/api/v2/alerts``)."""

    endpoint: AnyHttpUrl
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Duration = Field(default=DEFAULT_TIMEOUT, gt=0)


class EmailConfig(StrictModel):
    """One mail per group notification (text and HTML), over SMTP."""

    smtp_host: str = Field(min_length=1)
    port: int = Field(default=587, gt=0, lt=65536)
    starttls: bool = True  # upgrade a plain connection with STARTTLS (required when True)
    tls: bool = False  # implicit TLS from the first byte (port 465); starttls then defaults off
    username: str | None = None
    password: str | None = None
    from_: str = Field(alias="from", min_length=3)
    to: list[str] = Field(min_length=1)
    timeout: Duration = Field(default=DEFAULT_TIMEOUT, gt=0)

    @field_validator("to", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> EmailConfig:
        if self.tls and self.starttls:
            if "starttls" in self.model_fields_set:
                raise ValueError("tls (implicit TLS) and starttls exclude each other; set one")
            self.starttls = False  # ``tls: true`` alone means implicit TLS, not an error
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        return self


class AppriseConfig(StrictModel):
    """Any service apprise knows (Slack, Teams, PagerDuty, Telegram, ...), by apprise URL."""

    urls: list[str] = Field(min_length=1)


class ReceiverConfig(StrictModel):
    """A named receiver: any of the integrations; each gets every notification."""

    webhook: WebhookConfig | None = None
    alertmanager: AlertmanagerConfig | None = None
    email: EmailConfig | None = None
    apprise: AppriseConfig | None = None

    @model_validator(mode="after")
    def _some(self) -> ReceiverConfig:
        if not self.integrations():
            raise ValueError(
                "a receiver needs at least one of webhook, alertmanager, email, apprise"
            )
        return self

    def integrations(self) -> dict[str, StrictModel]:
        """The configured integrations by type."""
        found = {
            "webhook": self.webhook,
            "alertmanager": self.alertmanager,
            "email": self.email,
            "apprise": self.apprise,
        }
        return {k: v for k, v in found.items() if v is not None}
