"""``OTELGATE_*`` environment variables that override common settings of a loaded config:
``OTELGATE_ADMIN_ENDPOINT``, ``OTELGATE_LOG_LEVEL``, ``OTELGATE_GRPC_ENDPOINT``,
``OTELGATE_HTTP_ENDPOINT`` (these two need exactly one ``otlp`` receiver)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ValidationError,
)

from gateway.config.issues import ConfigError, ConfigIssue, describe
from gateway.config.model import (
    AdminConfig,
    Config,
    LoggingConfig,
)
from gateway.receivers.otlp import (
    GrpcProtocolConfig,
    HttpProtocolConfig,
    OtlpReceiverConfig,
)
from gateway.registry import component_type


def apply_env_overrides(config: Config, environ: Mapping[str, str]) -> Config:
    """A copy of ``config`` with the ``OTELGATE_*`` overrides applied; empty values count unset."""
    issues: list[ConfigIssue] = []

    def override(model: BaseModel | None, cls: type[BaseModel], var: str, key: str) -> Any:
        current = model.model_dump() if model is not None else {}
        try:
            return cls.model_validate({**current, key: environ[var]})
        except ValidationError as exc:
            issues.extend(ConfigIssue(f"env:{var}", describe(e)) for e in exc.errors())
            return None

    update: dict[str, Any] = {}
    if environ.get("OTELGATE_ADMIN_ENDPOINT"):
        var = "OTELGATE_ADMIN_ENDPOINT"
        update["admin"] = override(config.admin, AdminConfig, var, "endpoint")
    if environ.get("OTELGATE_LOG_LEVEL"):
        var = "OTELGATE_LOG_LEVEL"
        update["logging"] = override(config.logging, LoggingConfig, var, "level")
    models: dict[str, type[BaseModel]] = {"grpc": GrpcProtocolConfig, "http": HttpProtocolConfig}
    wanted = {p: f"OTELGATE_{p.upper()}_ENDPOINT" for p in models}
    wanted = {p: var for p, var in wanted.items() if environ.get(var)}
    otlp = [rid for rid in config.receivers if component_type(rid) == "otlp"]
    if wanted and len(otlp) != 1:
        found = f"found {len(otlp)}: {', '.join(otlp)}" if otlp else "found none"
        message = f"needs exactly one otlp receiver to apply to ({found})"
        issues.extend(ConfigIssue(f"env:{var}", message) for var in wanted.values())
    elif wanted:
        receiver = config.receivers[otlp[0]]
        assert isinstance(receiver, OtlpReceiverConfig)  # the otlp type selects this model
        changed = {
            p: override(getattr(receiver.protocols, p), models[p], var, "endpoint")
            for p, var in wanted.items()
        }
        protocols = receiver.protocols.model_copy(update=changed)
        receivers = {
            **config.receivers,
            otlp[0]: receiver.model_copy(update={"protocols": protocols}),
        }
        update["receivers"] = receivers
    if issues:
        raise ConfigError(issues)
    return config.model_copy(update=update)
