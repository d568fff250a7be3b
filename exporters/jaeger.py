"""Jaeger exporter: traces as OTLP to a Jaeger collector (gRPC on 4317 or HTTP on 4318).

Jaeger ingests OTLP natively, so this is an :class:`~exporters.otlp.OtlpExporter` that takes
traces only: a metrics or logs batch is a permanent error (config validation already keeps
the exporter out of other pipelines).
"""

from __future__ import annotations

from exporters.base import ExporterBase, Refused
from exporters.otlp import OtlpExporter
from gateway.batch import Batch, Signal
from gateway.errors import PermanentError
from gateway.redact import redact_url


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
