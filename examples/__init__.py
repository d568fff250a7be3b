"""Example services instrumented with otelgate."""
