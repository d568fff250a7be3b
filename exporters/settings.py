"""Configuration models of the exporters and of the queue and retry settings they share."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gateway.config.values import Duration, StrictModel

MEMORY_QUEUE_BYTES = 64 * 1024 * 1024
DISK_QUEUE_BYTES = 1024 * 1024 * 1024


class QueueSettings(StrictModel):
    """The exporter's bounded queue; when full, ``refuse`` upstream (retryable) or ``drop``."""

    enabled: bool = True
    queue_size: int = Field(default=100_000, gt=0)
    num_consumers: int = Field(default=4, ge=1)
    on_full: Literal["refuse", "drop"] = "refuse"
    # A memory queue is bounded by queue_size items and max_bytes (default 64 MiB) bytes, each
    # batch counted at the size it arrived with. storage: disk spools every batch (synced
    # before the client's answer); max_bytes (default 1 GiB), not queue_size, then bounds the
    # queue. directory None: <data dir>/spool/<exporter id>.
    storage: Literal["memory", "disk"] = "memory"
    directory: str | None = Field(default=None, min_length=1)
    max_bytes: int | None = Field(default=None, gt=0)
    # Exporters that forward OTLP bytes (otlp, jaeger) send the batches of a memory queue as
    # one request: what waits, or arrives within merge_timeout, up to the limits (4 MB: under
    # gRPC's default 4 MiB message cap). See exporters/merging.py.
    merge_batches: bool = True
    merge_max_items: int = Field(default=8192, gt=0)
    merge_max_bytes: int = Field(default=4_000_000, gt=0)
    merge_timeout: Duration = Field(default=0.2, ge=0)

    @model_validator(mode="after")
    def _disk_needs_queue(self) -> QueueSettings:
        if self.storage == "disk" and not self.enabled:
            raise ValueError("storage: disk needs the queue (enabled: true)")
        return self

    @property
    def byte_limit(self) -> int:
        """``max_bytes``, or the default of the storage."""
        if self.max_bytes is not None:
            return self.max_bytes
        return DISK_QUEUE_BYTES if self.storage == "disk" else MEMORY_QUEUE_BYTES


class RetrySettings(StrictModel):
    """Exponential backoff; durations in seconds, ``max_elapsed_time`` 0 retries forever."""

    enabled: bool = True
    initial_interval: Duration = Field(default=1.0, gt=0)
    max_interval: Duration = Field(default=30.0, gt=0)
    multiplier: float = Field(default=2.0, ge=1)
    randomization_factor: float = Field(default=0.5, ge=0, le=1)
    max_elapsed_time: Duration = Field(default=300.0, ge=0)

    @field_validator("max_interval")
    @classmethod
    def _not_below_initial(cls, value: float, info: ValidationInfo) -> float:
        if value < info.data.get("initial_interval", 0.0):
            raise ValueError(f"must be at least initial_interval ({info.data['initial_interval']})")
        return value


# Long enough that a slow backend answers before the request is given up and sent again: a
# backend that finishes a request after the client timed out stores its items twice.
DEFAULT_EXPORT_TIMEOUT = 30.0


class ExporterSettings(StrictModel):
    """What every exporter has: its queue and its retry policy."""

    sending_queue: QueueSettings = QueueSettings()
    retry_on_failure: RetrySettings = RetrySettings()

    @model_validator(mode="after")
    def _spool_retries_forever(self) -> ExporterSettings:
        """A disk spool is there to outlast outages: unless set, never give up on a batch."""
        retry, disk = self.retry_on_failure, self.sending_queue.storage == "disk"
        if disk and "max_elapsed_time" not in retry.model_fields_set:
            self.retry_on_failure = retry.model_copy(update={"max_elapsed_time": 0.0})
        return self


class TlsSettings(StrictModel):
    """Client TLS; ``insecure`` means plaintext, ``insecure_skip_verify`` skips verification."""

    insecure: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure_skip_verify: bool = False

    @model_validator(mode="after")
    def _cert_with_key(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file must be given together")
        return self
