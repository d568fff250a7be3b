"""The elasticsearch exporter's configuration: what is refused (with its path and why) and
what a valid entry builds."""

from __future__ import annotations

import pytest

from exporters.elasticsearch.exporter import ElasticsearchExporter
from gateway.components import build_exporter
from gateway.config.issues import ConfigError
from gateway.config.loading import parse_config


def _config(settings: str, pipeline: str = "logs") -> str:
    return f"""
receivers:
  otlp: {{protocols: {{http: null}}}}
exporters:
  elasticsearch:
{settings}
service:
  pipelines:
    {pipeline}: {{receivers: [otlp], exporters: [elasticsearch]}}
"""


@pytest.mark.parametrize(
    ("settings", "where", "message"),
    [
        ("    endpoint: es:9200", "endpoint", "http:// or https:// URL"),
        ("    endpoint: http://es:9200/_bulk", "endpoint", "base URL"),
        ("    endpoint: http://elastic:pw@es:9200", "endpoint", "not in the URL"),
        ("    endpoint: http://es:92000", "endpoint", "port"),
        ("    endpoint: http://es:9200\n    api_key: k\n    user: u\n    password: p", "",
         "not both"),
        ("    endpoint: http://es:9200\n    user: elastic", "", "together"),
        ("    endpoint: http://es:9200\n    mapping: {mode: raw}", "mapping.mode", "'otel'"),
        ("    endpoint: http://es:9200\n    data_stream: {dataset: My-App}",
         "data_stream.dataset", "not a valid data stream part"),
        ("    endpoint: http://es:9200\n    data_stream: {namespace: 'a b'}",
         "data_stream.namespace", "not a valid data stream part"),
        ("    endpoint: http://es:9200\n    max_request_bytes: lots", "max_request_bytes",
         "invalid size"),
        ("    endpoint: http://es:9200\n    api_key: k\n    headers: {Authorization: x}", "",
         "conflicts with api_key"),
    ],
)  # fmt: skip
def test_config_errors_name_the_key(settings: str, where: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_config(settings))
    text = str(info.value)
    assert text.startswith(f"exporters.elasticsearch{'.' + where if where else ''}"), text
    assert message in text


def test_elasticsearch_in_a_traces_pipeline_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_config("    endpoint: http://es:9200", pipeline="traces"))
    assert "exporter 'elasticsearch' takes only logs, not traces" in str(info.value)


def test_a_valid_entry_builds_the_exporter() -> None:
    config = parse_config(
        _config(
            "    endpoint: https://es.example:9243\n    mapping: {mode: ecs}\n"
            "    data_stream: {dataset: shop.orders, namespace: prod}\n"
            "    api_key: ${env:ES_API_KEY:-c2VjcmV0}\n    max_request_bytes: 2MiB\n"
            "    pipeline: logs-enrich"
        )
    )
    settings = config.exporters["elasticsearch"]
    exporter = build_exporter("elasticsearch", settings)
    assert isinstance(exporter, ElasticsearchExporter)
    assert exporter.mapping.mode == "ecs"
    assert (exporter.mapping.dataset, exporter.mapping.namespace) == ("shop.orders", "prod")
    assert exporter.max_request_bytes == 2 * 1024 * 1024
    assert exporter.headers["Authorization"] == "ApiKey c2VjcmV0"
    assert "c2VjcmV0" not in repr(exporter)
