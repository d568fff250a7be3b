"""Tests of gateway.otlp.builders."""
