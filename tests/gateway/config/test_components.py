"""The component sections: unknown sections, component ids, types looked up in the registry;
and component models built directly, without a file."""

from __future__ import annotations

import pytest

from exporters.file import FileExporterConfig, FileRotationSettings
from exporters.otlp.config import OtlpExporterConfig
from gateway.processors.resource import ResourceAction, ResourceProcessorConfig
from tests.gateway.config.helpers import issues_of, known, patched

BAD_CASES: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "unknown top-level key",
        patched(("receiverz", {})),
        [("receiverz", "unknown key (did you mean 'receivers'?)")],
    ),
    (
        "wrong type: section",
        patched(("exporters", ["file"])),
        [
            ("exporters", "must be a mapping of exporter id to settings"),
        ],
    ),
    (
        "unknown exporter type",
        patched(("exporters.kafka/x", {"brokers": ["a:9092"]})),
        [("exporters.kafka/x", f"unknown exporter type 'kafka' (known: {known('exporters')})")],
    ),
    (
        "unknown receiver type",
        patched(("receivers.jaeger", {})),
        [("receivers.jaeger", f"unknown receiver type 'jaeger' (known: {known('receivers')})")],
    ),
    (
        "unknown processor type",
        patched(("processors.batch", None)),
        [("processors.batch", f"unknown processor type 'batch' (known: {known('processors')})")],
    ),
    (
        "invalid component id",
        patched(("exporters.otlp/", {"endpoint": "a:1"})),
        [("exporters.otlp/", "invalid id (want type or type/name)")],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [case[1:] for case in BAD_CASES], ids=[case[0] for case in BAD_CASES]
)
def test_bad_config_reports_exact_paths(text: str, expected: list[tuple[str, str]]) -> None:
    assert sorted(issues_of(text)) == sorted(expected)


def test_models_can_be_built_directly() -> None:
    action = ResourceAction(key="k", value="v", action="insert")
    assert action.value == "v"
    assert ResourceProcessorConfig(attributes=[action]).attributes == [action]
    assert OtlpExporterConfig(endpoint="c:4317").port == 4317
    assert FileExporterConfig(path="x").rotation == FileRotationSettings()
