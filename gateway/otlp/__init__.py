"""OTLP data in memory and on the wire: the Batch, protobuf wire splicing, the
OTLP/JSON codec, validation and ingest limits, builders for the gateway's own telemetry."""
