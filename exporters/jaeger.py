"""Jaeger exporter: traces as OTLP to a Jaeger collector (gRPC on 4317 or HTTP on 4318).

Jaeger ingests OTLP natively, so this is an :class:`~exporters.otlp.exporter.OtlpExporter` that
takes
traces only: a metrics or logs batch is a permanent error (config validation already keeps
the exporter out of other pipelines).
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    model_validator,
)

from exporters.base import ExporterBase, Refused
from exporters.otlp.config import OtlpExporterConfig
from exporters.otlp.exporter import OtlpExporter, create_otlp
from gateway.errors import PermanentError
from gateway.otlp.batch import Batch, Signal
from gateway.redact import redact_url
from gateway.registry import ComponentFactory, Host


class JaegerExporter(ExporterBase):
    """Forwards trace batches to Jaeger through an OTLP exporter."""

    sends_encoded_batches = True  # pushes through OtlpExporter, which sends the bytes

    def __init__(self, otlp: OtlpExporter) -> None:
        self.otlp = otlp

    def __repr__(self) -> str:
        return f"JaegerExporter({redact_url(self.otlp.endpoint)!r}, {self.otlp.protocol!r})"

    async def start(self) -> None:
        await self.otlp.start()

    async def shutdown(self) -> None:
        await self.otlp.shutdown()

    async def push(self, batch: Batch) -> Refused | None:
        """Send one trace batch; other signals are refused permanently."""
        if batch.signal is not Signal.TRACES:
            raise PermanentError(f"the jaeger exporter takes traces only, not {batch.signal}")
        return await self.otlp.push(batch)


class JaegerExporterConfig(OtlpExporterConfig):
    """The ``jaeger`` exporter: OTLP to a Jaeger collector, traces only. ``endpoint`` defaults
    to ``jaeger:4317`` (gRPC) or ``http://jaeger:4318`` (``protocol: http/protobuf``)."""

    @model_validator(mode="before")
    @classmethod
    def _default_endpoint(cls, data: Any) -> Any:
        if isinstance(data, dict) and "endpoint" not in data:
            http = data.get("protocol") == "http/protobuf"
            return {**data, "endpoint": "http://jaeger:4318" if http else "jaeger:4317"}
        return data


def create_jaeger(name: str, config: JaegerExporterConfig, host: Host) -> JaegerExporter:
    """The exporter of a ``jaeger`` entry."""
    return JaegerExporter(create_otlp(name, config, host))


FACTORY = ComponentFactory(
    kind="exporter",
    type_name="jaeger",
    config=JaegerExporterConfig,
    signals=frozenset({Signal.TRACES}),
    create=create_jaeger,
)
