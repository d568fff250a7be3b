"""The Loki exporter: push API (protobuf/JSON) and native OTLP, label mapping."""
