"""Tests of the Elasticsearch exporter."""
