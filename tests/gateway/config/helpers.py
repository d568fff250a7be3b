"""Shared by the configuration tests (here and in the components' folders): a small valid
configuration changed in a few places, and the problems a text is reported to have."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from gateway.components import REGISTRY
from gateway.config.issues import ConfigError
from gateway.config.loading import parse_config
from gateway.config.model import KIND_OF_SECTION, Config
from gateway.receivers.otlp import OtlpReceiverConfig

# A small valid configuration that the bad cases change in one place or a few.
BASE: dict[str, Any] = {
    "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "0.0.0.0:4317"}}}},
    "exporters": {
        "file": {"path": "/tmp/otelgate/traces.jsonl"},
        "otlp/down": {"endpoint": "collector:4317"},
    },
    "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file"]}}},
}
DELETE = object()


def otlp_receiver(config: Config) -> OtlpReceiverConfig:
    """The ``otlp`` receiver, typed (receivers may be of several types)."""
    receiver = config.receivers["otlp"]
    assert isinstance(receiver, OtlpReceiverConfig)
    return receiver


def known(section: str) -> str:
    """The known component types of a section, as the error message lists them."""
    return ", ".join(sorted(REGISTRY.types(KIND_OF_SECTION[section])))


def patched(*changes: tuple[str, Any]) -> str:
    """BASE as YAML with each ``(dotted.path, value)`` set (``DELETE`` removes the key)."""
    doc = copy.deepcopy(BASE)
    for path, value in changes:
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node.setdefault(key, {})
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return yaml.safe_dump(doc, sort_keys=False)


def issues_of(text: str, environ: dict[str, str] | None = None) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, environ=environ or {})
    return [(issue.path, issue.message) for issue in info.value.errors]
