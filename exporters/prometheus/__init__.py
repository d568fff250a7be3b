"""Prometheus: the pull exporter and remote write, and the OTLP to
Prometheus translation they share."""
