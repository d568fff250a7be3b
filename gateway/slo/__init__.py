"""Service level objectives: config, burn-rate maths, the tracker, OpenSLO files
and Prometheus rule generation."""
