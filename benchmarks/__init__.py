"""Load benchmarks of otelgate against a peer collector (rotel); see benchmarks/README.md.

Not part of the test suite: pytest only collects ``tests/``.
"""
