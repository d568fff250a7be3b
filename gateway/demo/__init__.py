"""``otelgate demo``: the gateway plus three instrumented services calling each other."""
