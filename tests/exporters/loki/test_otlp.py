"""protocol: otlp — the batch is fitted to what Loki's OTLP endpoint takes whole."""

from __future__ import annotations

from collections import Counter

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from exporters.loki.exporter import LokiExporter
from exporters.loki.otlp import fit_for_loki
from gateway.errors import RefusedDataError
from gateway.otlp.batch import Batch, Signal
from tests.support.loki_server import LokiServer
from tests.support.otlp_samples import sample_request


def _kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _request() -> ExportLogsServiceRequest:
    request = sample_request(Signal.LOGS, 3)
    assert isinstance(request, ExportLogsServiceRequest)
    return request


def test_a_batch_that_fits_is_forwarded_as_received() -> None:
    batch = Batch.from_request(Signal.LOGS, _request())
    adjusted: Counter[str] = Counter()
    assert fit_for_loki(batch, 256 * 1024, adjusted) is batch
    assert not +adjusted


def test_what_loki_would_refuse_is_fitted_on_a_copy_and_counted() -> None:
    request = _request()
    resource = request.resource_logs[0].resource
    resource.attributes.extend([_kv("k8s.pod.name", "p" * 3000), _kv("", "empty key")])
    records = request.resource_logs[0].scope_logs[0].log_records
    records[0].body.string_value = "é" * 200_000  # 400,000 bytes
    records[1].attributes.extend([_kv("_", "x"), _kv("...", "y"), _kv("fine.key", "z")])
    records[2].attributes.extend(_kv(f"attr.{i}", "v") for i in range(200))
    original = request.SerializeToString()
    batch = Batch.from_request(Signal.LOGS, request)
    adjusted: Counter[str] = Counter()

    fitted = fit_for_loki(batch, 256 * 1024, adjusted)

    assert fitted is not batch and batch.request.SerializeToString() == original
    out = fitted.request
    assert isinstance(out, ExportLogsServiceRequest)
    attrs = {kv.key: kv.value.string_value for kv in out.resource_logs[0].resource.attributes}
    assert len(attrs["k8s.pod.name"].encode()) == 2048 and "" not in attrs
    fitted_records = out.resource_logs[0].scope_logs[0].log_records
    assert len(fitted_records[0].body.string_value.encode()) <= 256 * 1024
    assert [kv.key for kv in fitted_records[1].attributes][-1] == "fine.key"
    assert {kv.key for kv in fitted_records[1].attributes}.isdisjoint({"_", "..."})
    assert len(fitted_records[2].attributes) < 128  # with resource and scope pairs: 128 in all
    assert adjusted == Counter(
        label_value_truncated=1, name_dropped=3, line_truncated=1, metadata_truncated=1
    )
    assert fitted.items == 3


async def test_loki_otlp_mode_stores_every_record_and_names_refusals() -> None:
    """Against a Loki that refuses what its limits refuse: every record of a batch that would
    have lost a line, metadata or the whole request arrives; a refusal Loki still sends is
    reported with its Status message, not raw bytes."""
    request = _request()
    records = request.resource_logs[0].scope_logs[0].log_records
    records[0].body.string_value = "x" * 300_000
    records[1].attributes.append(_kv("_", "x"))
    records[2].attributes.extend(_kv(f"attr.{i}", "v") for i in range(200))
    with LokiServer(max_age_ns=None) as loki:
        exporter = LokiExporter(loki.url, protocol="otlp")
        await exporter.start()
        try:
            assert await exporter.push(Batch.from_request(Signal.LOGS, request)) is None
            stored = [r for push in loki.otlp for rl in push.request.resource_logs
                      for sl in rl.scope_logs for r in sl.log_records]  # fmt: skip
            assert len(stored) == 3 and loki.refused == []

            unfitted = _request()
            unfitted.resource_logs[0].resource.attributes.append(_kv("k8s.pod.name", "p" * 3000))
            with pytest.raises(RefusedDataError) as info:
                await exporter._otlp.push(Batch.from_request(Signal.LOGS, unfitted))  # type: ignore[union-attr]
        finally:
            await exporter.shutdown()
    assert "label value too long for 'k8s.pod.name'" in str(info.value)
    assert "\\x" not in str(info.value) and "HTTP 400" in str(info.value)
