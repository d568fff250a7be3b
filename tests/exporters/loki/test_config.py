"""The loki exporter's configuration: settings that are refused (with what message), and
fifteen labels accepted."""

from __future__ import annotations

import pytest

from gateway.config.issues import ConfigError
from gateway.config.loading import parse_config


def _loki_config(settings: str, pipeline: str = "logs") -> str:
    return f"""
receivers:
  otlp: {{protocols: {{http: null}}}}
exporters:
  loki:
{settings}
service:
  pipelines:
    {pipeline}: {{receivers: [otlp], exporters: [loki]}}
"""


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("    endpoint: http://loki:3100\n    level_label: true\n    resource_labels: {a: level}",
         "level_label"),
        ("    endpoint: http://loki:3100\n    resource_labels: {a: bad.name}",
         "label name 'bad.name'"),
        ("    endpoint: http://loki:3100/loki/api/v1/push", "base URL"),
        ("    endpoint: loki:3100", "http:// or https:// URL"),
        ("    endpoint: http://loki:3100\n    protocol: otlp\n    format: json",
         "format apply to protocol: push only"),
        ("    endpoint: http://loki:3100\n    compression: gzip", "always snappy"),
    ],
)  # fmt: skip
def test_config_errors(settings: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_loki_config(settings))
    assert message in str(info.value)
    assert str(info.value).startswith("exporters.loki")


def test_loki_in_a_traces_pipeline_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_loki_config("    endpoint: http://loki:3100", pipeline="traces"))
    assert str(info.value) == (
        "service.pipelines.traces.exporters[0]: exporter 'loki' takes only logs, not traces"
    )


def test_fifteen_labels_are_fine() -> None:
    labels = ", ".join(f"a{i}: l{i}" for i in range(14))
    config = parse_config(
        _loki_config(f"    endpoint: http://l:3100\n    resource_labels: {{{labels}}}")
    )
    assert len(config.exporters["loki"].resource_labels) == 14  # type: ignore[attr-defined]
