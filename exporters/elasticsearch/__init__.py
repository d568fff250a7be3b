"""The Elasticsearch exporter: the `_bulk` API into data streams, otel or ECS documents."""
