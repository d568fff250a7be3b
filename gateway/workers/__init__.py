"""Worker processes behind one set of OTLP ports (``service.workers``), one view of state.

With ``service.workers: 1`` (the default) none of this runs: the gateway is one process.
With N > 1, ``otelgate run`` is a supervisor (:mod:`gateway.workers.supervisor`) that starts N
worker processes (:mod:`gateway.workers.worker`). Every worker listens on the same OTLP ports
(``SO_REUSEPORT``: the kernel spreads connections), decodes, validates and admits requests and
runs the pipelines' *forwarding* exporters (OTLP, Loki, Jaeger, remote write) with its own queues
and spool partition. Each accepted request is also relayed, as the protobuf bytes the receiver
produced, over a socket pair to the supervisor (:mod:`gateway.workers.link`), which runs
everything that keeps state exactly as one process would for the same input: the observers
(service health, SLOs, error groups, alert log counts), span metrics, the exporters that hold or
write shared state (Prometheus pull, the embedded store, file output), host metrics, the alert
engine, the audit trail and the admin listener. Which component runs where is
:mod:`gateway.workers.roles`. docs/workers.md explains the model and its limits.
"""
