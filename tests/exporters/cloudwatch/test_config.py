"""The cloudwatch exporter's configuration: defaults, the errors with their key path, the
optional dependency, the region at start, and the registry entry."""

from __future__ import annotations

import sys

import pytest
import yaml

from exporters.cloudwatch.client import MISSING, NO_REGION
from exporters.cloudwatch.config import CloudWatchExporterConfig
from exporters.cloudwatch.limits import MAX_EVENT_BYTES, RETENTION_DAYS
from gateway.components import REGISTRY
from gateway.config.issues import ConfigError
from gateway.config.loading import parse_config
from gateway.errors import PermanentError, RetryableError
from gateway.otlp.batch import Signal
from tests.exporters.cloudwatch.helpers import batch, logs, make_exporter, record

METRICS = "exporters.cloudwatch/aws.metrics"


def config_with(exporter: dict, signal: str = "logs") -> str:
    return yaml.safe_dump({
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "127.0.0.1:0"}}}},
        "exporters": {"cloudwatch/aws": exporter},
        "service": {"pipelines": {signal: {"receivers": ["otlp"],
                                           "exporters": ["cloudwatch/aws"]}}},
    })  # fmt: skip


def errors_of(exporter: dict, signal: str = "logs") -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(config_with(exporter, signal), environ={})
    return [str(issue) for issue in caught.value.errors]


def test_defaults() -> None:
    config = CloudWatchExporterConfig.model_validate({})
    assert (config.region, config.endpoint) == (None, None)
    assert (config.log_group_name, config.log_stream_name) == ("/otelgate/logs", "{service.name}")
    assert (config.log_retention, config.raw_log, config.timeout) == (0, False, 30.0)
    assert config.max_event_size == MAX_EVENT_BYTES == 1_048_550
    m = config.metrics
    assert (m.log_group_name, m.namespace, m.resource_dimensions) == (
        "/otelgate/metrics", "otelgate", ["service.name"])  # fmt: skip
    assert (m.attribute_dimensions, m.storage_resolution, m.metric_expiration) == (True, 60, 300)
    assert config.sending_queue.enabled and config.retry_on_failure.enabled


def test_a_valid_config_loads_for_logs_and_metrics() -> None:
    exporter = {"region": "eu-west-1", "endpoint": "http://127.0.0.1:4566", "log_retention": 30,
                "log_group_name": "/apps/{deployment.environment.name}",
                "log_stream_name": "{service.name}/{service.instance.id}",
                "metrics": {"namespace": "Shop/Checkout", "storage_resolution": 1}}  # fmt: skip
    for signal in ("logs", "metrics"):
        parsed = parse_config(config_with(exporter, signal), environ={})
        config = parsed.exporters["cloudwatch/aws"]
        assert isinstance(config, CloudWatchExporterConfig)
        assert config.log_retention == 30 and config.metrics.storage_resolution == 1


def test_traces_are_refused_with_the_pipeline_path() -> None:
    (error,) = errors_of({"region": "eu-west-1"}, "traces")
    assert error.startswith("service.pipelines.traces.exporters[0]")
    assert "cloudwatch" in error and "traces" in error


@pytest.mark.parametrize(
    ("settings", "path", "words"),
    [
        ({"log_retention": 2}, "exporters.cloudwatch/aws.log_retention", "3653"),
        ({"log_retention": -1}, "exporters.cloudwatch/aws.log_retention", "0 (keep forever)"),
        ({"log_group_name": "/a:b"}, "exporters.cloudwatch/aws.log_group_name", "':'"),
        ({"log_group_name": "/a/{}"}, "exporters.cloudwatch/aws.log_group_name", "empty"),
        ({"log_group_name": "/a/{x"}, "exporters.cloudwatch/aws.log_group_name", "unbalanced"),
        ({"log_group_name": ""}, "exporters.cloudwatch/aws.log_group_name", "empty"),
        ({"log_stream_name": "a*b"}, "exporters.cloudwatch/aws.log_stream_name", "'*'"),
        ({"log_stream_name": "x" * 513}, "exporters.cloudwatch/aws.log_stream_name", "512"),
        ({"endpoint": "logs.local:4566"}, "exporters.cloudwatch/aws.endpoint", "http://"),
        ({"endpoint": "http://h:99999"}, "exporters.cloudwatch/aws.endpoint", "port"),
        ({"region": "eu west"}, "exporters.cloudwatch/aws.region", "region"),
        ({"max_event_size": MAX_EVENT_BYTES + 1}, "exporters.cloudwatch/aws.max_event_size", ""),
        ({"timeout": 0}, "exporters.cloudwatch/aws.timeout", ""),
        ({"metrics": {"namespace": "a b"}}, f"{METRICS}.namespace", "letters"),
        ({"metrics": {"namespace": "AWS/EC2"}}, f"{METRICS}.namespace", "AWS/"),
        ({"metrics": {"storage_resolution": 5}},
         "exporters.cloudwatch/aws.metrics.storage_resolution", ""),
        ({"metrics": {"resource_dimensions": [f"d{i}" for i in range(31)]}},
         "exporters.cloudwatch/aws.metrics.resource_dimensions", "30"),
        ({"metrics": {"resource_dimensions": [":x"]}},
         "exporters.cloudwatch/aws.metrics.resource_dimensions", "':'"),
        ({"metrics": {"log_group_name": "a b"}},
         "exporters.cloudwatch/aws.metrics.log_group_name", "' '"),
        ({"metrics": {"dimensions": []}}, "exporters.cloudwatch/aws.metrics.dimensions", ""),
        ({"retention": 7}, "exporters.cloudwatch/aws.retention", ""),
    ],
)  # fmt: skip
def test_errors_name_their_key_path(settings: dict, path: str, words: str) -> None:
    errors = errors_of(settings)
    assert len(errors) == 1, errors
    assert errors[0].startswith(path + ":"), errors[0]
    assert words in errors[0]


@pytest.mark.parametrize("days", [0, *RETENTION_DAYS])
def test_every_retention_cloudwatch_takes_is_accepted(days: int) -> None:
    assert CloudWatchExporterConfig.model_validate({"log_retention": days}).log_retention == days


def test_without_aiobotocore_the_config_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "aiobotocore", None)
    monkeypatch.setitem(sys.modules, "aiobotocore.session", None)
    (error,) = errors_of({"region": "eu-west-1"})
    assert error == f"exporters.cloudwatch/aws: {MISSING}"
    assert "pip install 'otelgate[cloudwatch]'" in error


async def test_without_aiobotocore_start_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exporter = make_exporter()  # validated while aiobotocore was there
    monkeypatch.setitem(sys.modules, "aiobotocore.session", None)
    monkeypatch.setitem(sys.modules, "aiobotocore.config", None)
    with pytest.raises(PermanentError, match=r"pip install 'otelgate\[cloudwatch\]'"):
        await exporter.start()


async def test_the_region_comes_from_the_aws_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-2")
    exporter = make_exporter(region=None, endpoint="http://127.0.0.1:9")
    await exporter.start()
    try:
        assert exporter.region == "ap-southeast-2"
        assert exporter.client.meta.region_name == "ap-southeast-2"
    finally:
        await exporter.shutdown()


async def test_no_region_anywhere_fails_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    exporter = make_exporter(region=None)
    with pytest.raises(PermanentError) as caught:
        await exporter.start()
    assert str(caught.value) == NO_REGION


def test_registered_for_logs_and_metrics() -> None:
    factory = REGISTRY.factory("exporter", "cloudwatch")
    assert factory.signals == frozenset({Signal.LOGS, Signal.METRICS})
    assert factory.config is CloudWatchExporterConfig


async def test_without_credentials_start_warns_and_pushes_fail_for_good(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    exporter = make_exporter(endpoint="http://127.0.0.1:9")
    await exporter.start()
    try:
        assert "no AWS credentials found" in caplog.text
        with pytest.raises(PermanentError, match="no usable AWS credentials") as caught:
            await exporter.push(batch(logs([record("x")])))
        assert not isinstance(caught.value, RetryableError)
    finally:
        await exporter.shutdown()
