"""Configuration in general: values and parsers, ${env:VAR} expansion, error
paths, the top-level model, loading and the OTELGATE_* overrides.

Component configs live next to their component; this package's ``model`` learns them from
:mod:`gateway.components`."""
