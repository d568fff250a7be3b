"""The Prometheus-backed dashboards: *Gateway* (the gateway's own /metrics and the hostmetrics
receiver's series) and *Services* (RED from span metrics, SLOs from the recording rules).

Every series named here is one the gateway really exposes (gateway/selfmetrics.py and the
modules registering on the same registry; the span metrics and hostmetrics translated on
/metrics/otlp). A panel whose series only exist after something went wrong (refusals,
failures, retries, a disk spool) ends in ``or vector(0)``, so it shows 0 instead of "No data".
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard
from grafana_kit import PROMETHEUS, big_number, board, chart, grid, promql, service_variable

RATE = "$__rate_interval"
HOST = 'otel_scope_name="otelgate.hostmetrics"'
SERVER = 'service_name="$service",span_kind="SPAN_KIND_SERVER"'
ERROR = 'status_code="STATUS_CODE_ERROR"'
SERVICES_QUERY = "label_values(traces_span_metrics_calls_total, service_name)"


def rate_by(labels: str, metric: str, *, zero: bool = False) -> str:
    """``sum by (labels) (rate(metric[$__rate_interval]))``, or 0 when no series exists yet."""
    expr = f"sum by ({labels}) (rate({metric}[{RATE}]))"
    return f"{expr} or vector(0)" if zero else expr


def quantile(q: float, selector: str, by: str = "le") -> str:
    """The ``q`` quantile of the span duration histogram over ``selector``."""
    buckets = f"traces_span_metrics_duration_seconds_bucket{{{selector}}}"
    return f"histogram_quantile({q}, sum by ({by}) (rate({buckets}[{RATE}])))"


def latency(q: float, buckets: str, by: str = "") -> str:
    """The ``q`` quantile of one of the gateway's own duration histograms, per ``by``."""
    labels = f"{by}, le" if by else "le"
    return f"histogram_quantile({q}, sum by ({labels}) (rate({buckets}[{RATE}])))"


def gateway() -> dashboard.Dashboard:
    """Ingest, refusals, exporters (queues, retries, failures, spool), the gateway process and
    the host it runs on."""
    d = board(
        "otelgate-gateway",
        "otelgate: gateway",
        "What the gateway takes in, refuses and delivers, and the resources it uses.",
    )
    d = d.with_row(dashboard.Row("Ingest"))
    d = d.with_panel(chart(
        "Accepted items/s by signal and transport",
        "Spans, data points and log records accepted (otelgate_receiver_accepted_items_total).",
        "cps",
        promql(rate_by("signal, transport", "otelgate_receiver_accepted_items_total"),
               "{{signal}} over {{transport}}"),
    ))  # fmt: skip
    d = d.with_panel(chart(
        "Refused items/s and requests/s by reason",
        "Items refused with a reason (retryable ones: 429/503 or RESOURCE_EXHAUSTED/UNAVAILABLE "
        "with Retry-After/RetryInfo), and requests refused before their items could be "
        "counted. 0 when nothing is refused.",
        "cps",
        promql(rate_by("signal, reason", "otelgate_receiver_refused_items_total", zero=True),
               "items {{signal}}: {{reason}}"),
        promql(rate_by("signal, reason", "otelgate_receiver_refused_requests_total", zero=True),
               "requests {{signal}}: {{reason}}"),
    ))  # fmt: skip
    d = d.with_panel(chart(
        "Open connections by listener",
        "Connections held open on the OTLP and admin listeners (otelgate_listener_connections).",
        "short",
        promql("sum by (listener) (otelgate_listener_connections)", "{{listener}}"),
    ))  # fmt: skip
    d = d.with_panel(chart(
        "In-flight request bytes, share of the budget",
        "Request bytes held by requests being handled, over service.admission.max_inflight_bytes;"
        " at 100% the gateway answers 503 with Retry-After (gRPC UNAVAILABLE).",
        "percentunit",
        promql("sum(otelgate_receiver_inflight_bytes) "
               "/ sum(otelgate_receiver_inflight_limit_bytes)", "in flight"),
    ))  # fmt: skip
    d = d.with_row(dashboard.Row("Exporters"))
    d = d.with_panel(chart(
        "Sent items/s by exporter",
        "Items each exporter delivered (otelgate_exporter_sent_items_total).",
        "cps",
        promql(rate_by("exporter, signal", "otelgate_exporter_sent_items_total"),
               "{{exporter}} {{signal}}"),
    ))  # fmt: skip
    d = d.with_panel(chart(
        "Failed and dropped items/s by exporter",
        "Failed: a permanent error or retries exhausted. Dropped: queue full with on_full: drop, "
        "shed, or still queued at shutdown. 0 when every item was delivered.",
        "cps",
        promql(rate_by("exporter", "otelgate_exporter_failed_items_total", zero=True),
               "{{exporter}} failed"),
        promql(rate_by("exporter", "otelgate_exporter_dropped_items_total", zero=True),
               "{{exporter}} dropped"),
    ))  # fmt: skip
    d = d.with_panel(chart(
        "Retries/s and batch splits/s by exporter",
        "Attempts that failed with a retryable error and were retried, and batches cut smaller "
        "because the backend refused part of them. 0 when the backends take everything.",
        "cps",
        promql(rate_by("exporter", "otelgate_exporter_retries_total", zero=True),
               "{{exporter}} retries"),
        promql(rate_by("exporter", "otelgate_exporter_batch_splits_total", zero=True),
               "{{exporter}} splits"),
    ))  # fmt: skip
    d = d.with_panel(chart(
        "Queue fill by exporter",
        "Items and bytes waiting in each exporter's memory queue, as a share of its capacity. "
        "A full queue refuses upstream (default) or drops.",
        "percentunit",
        promql("max by (exporter) "
               "(otelgate_exporter_queue_size / otelgate_exporter_queue_capacity)",
               "{{exporter}} items"),
        promql("max by (exporter) "
               "(otelgate_exporter_queue_bytes / otelgate_exporter_queue_capacity_bytes)",
               "{{exporter}} bytes"),
    ))  # fmt: skip
    d = d.with_panel(chart(
        "Disk spool by exporter",
        "Bytes on disk in the spool of exporters with sending_queue.storage: disk, and its cap. "
        "0 when no exporter spools to disk.",
        "bytes",
        promql("sum by (exporter) (otelgate_exporter_spool_bytes) or vector(0)",
               "{{exporter}} on disk"),
        promql("sum by (exporter) (otelgate_exporter_spool_capacity_bytes) or vector(0)",
               "{{exporter}} cap"),
    ))  # fmt: skip
    d = d.with_panel(chart(
        "Items changed to fit a backend/s",
        "Changes an exporter made so its backend takes the items (dropped invalid names, "
        "truncated lines...), by reason; the items are still delivered. 0 when none.",
        "cps",
        promql(rate_by("exporter, reason", "otelgate_exporter_adjusted_total", zero=True),
               "{{exporter}}: {{reason}}"),
    ))  # fmt: skip
    d = d.with_row(dashboard.Row("The gateway process"))
    d = d.with_panel(chart(
        "Request handling time p50 / p95 / p99",
        "Time the gateway spent on each received request: decoding, validation and handing it "
        "to the exporter queues, refused requests included, network not "
        "(otelgate_receiver_request_duration_seconds).",
        "s",
        *(promql(latency(q, "otelgate_receiver_request_duration_seconds_bucket"), f"p{label}")
          for q, label in ((0.5, "50"), (0.95, "95"), (0.99, "99"))),
    ))  # fmt: skip
    d = d.with_panel(chart(
        "Send attempt duration p95 by exporter",
        "How long each exporter's attempts to deliver to its backend take, failed ones "
        "included (otelgate_exporter_send_duration_seconds).",
        "s",
        promql(latency(0.95, "otelgate_exporter_send_duration_seconds_bucket", "exporter"),
               "{{exporter}}"),
    ))  # fmt: skip
    d = d.with_panel(chart(
        "Event loop delay",
        "How late the event loop last woke a 50 ms timer: the latency the gateway adds to "
        "every request (load shedding compares it with service.admission.max_loop_delay).",
        "s",
        promql("max by (instance) (otelgate_event_loop_delay_seconds)", "{{instance}}"),
    ))  # fmt: skip
    d = d.with_panel(chart(
        "Gateway process CPU",
        "The gateway's own process, sampled by the hostmetrics receiver "
        "(process_cpu_utilization_ratio: CPU time over elapsed time and the number of CPUs).",
        "percentunit",
        promql(f"max by (instance) (process_cpu_utilization_ratio{{{HOST}}})", "{{instance}}"),
    ))  # fmt: skip
    d = d.with_panel(chart(
        "Gateway process memory",
        "Resident memory of the gateway process (process_memory_usage_bytes).",
        "bytes",
        promql(f"max by (instance) (process_memory_usage_bytes{{{HOST}}})", "{{instance}}"),
    ))  # fmt: skip
    d = d.with_panel(chart(
        "Cardinality guards",
        "Series the Prometheus exporter holds, and spans/s the span metrics processor folded "
        "into its overflow series because a services/operations limit was reached.",
        "short",
        promql("sum by (exporter) (otelgate_prometheus_series)", "{{exporter}} series"),
        promql(rate_by("limit", "otelgate_spanmetrics_overflow_spans_total"),
               "overflow spans/s ({{limit}})"),
    ))  # fmt: skip
    d = d.with_panel(chart(
        "Log files: rotation status",
        "Each file the gateway writes and rotates (logging.file, file exporters): status 0 "
        "healthy, 1 warning, 2 critical (free space of its directory, failed rotations; the "
        "LogFileProblem alert). 0 when no file is managed.",
        "short",
        promql("max by (owner) (otelgate_log_file_status) or vector(0)", "{{owner}} status"),
    ))  # fmt: skip
    d = d.with_row(dashboard.Row("Host (hostmetrics receiver)"))
    d = d.with_panel(chart(
        "Host CPU by mode",
        "Share of the host's CPU time per mode, idle left out (system_cpu_utilization_ratio).",
        "percentunit",
        promql("sum by (instance, cpu_mode) "
               f'(system_cpu_utilization_ratio{{{HOST},cpu_mode!="idle"}})',
               "{{cpu_mode}} {{instance}}"),
    ))  # fmt: skip
    d = d.with_panel(chart(
        "Host memory used",
        "Share of the host's memory in use (system_memory_utilization_ratio, state used).",
        "percentunit",
        promql("max by (instance) "
               f'(system_memory_utilization_ratio{{{HOST},system_memory_state="used"}})',
               "{{instance}}"),
    ))  # fmt: skip
    d = d.with_panel(chart(
        "Filesystem used by mount point",
        "Share of each filesystem in use (system_filesystem_utilization_ratio).",
        "percentunit",
        promql("max by (instance, system_filesystem_mountpoint) "
               f"(system_filesystem_utilization_ratio{{{HOST}}})",
               "{{system_filesystem_mountpoint}} {{instance}}"),
    ))  # fmt: skip
    return d.with_panel(chart(
        "Network bytes/s by direction",
        "Bytes the host's interfaces received and sent (system_network_io_bytes_total).",
        "Bps",
        promql(rate_by("instance, network_io_direction",
                       f"system_network_io_bytes_total{{{HOST}}}"),
               "{{network_io_direction}} {{instance}}"),
    ))  # fmt: skip


def services() -> dashboard.Dashboard:
    """RED of one service from span metrics, and every SLO's budget and burn."""
    calls = f"traces_span_metrics_calls_total{{{SERVER}}}"
    errors = f"traces_span_metrics_calls_total{{{SERVER},{ERROR}}}"
    error_ratio = f"(sum(rate({errors}[{RATE}])) or vector(0)) / sum(rate({calls}[{RATE}]))"
    d = board(
        "otelgate-services",
        "otelgate: services",
        "Rate, errors and duration of each service's SERVER spans (the gateway's span metrics), "
        "and the SLOs' error budgets and burn rates (rules from `otelgate slo-rules`).",
    ).with_variable(service_variable(PROMETHEUS, SERVICES_QUERY))
    d = d.with_row(dashboard.Row("$service: rate, errors, duration (SERVER spans)"))
    d = d.with_panel(big_number(
        "Requests/s", "SERVER spans per second of $service.", "reqps",
        promql(f"sum(rate({calls}[{RATE}]))", "requests/s"),
    ))  # fmt: skip
    d = d.with_panel(big_number(
        "Error ratio", "Share of $service's SERVER spans with status ERROR.", "percentunit",
        promql(error_ratio, "error ratio"),
        steps=[(None, "green"), (0.01, "orange"), (0.05, "red")],
    ))  # fmt: skip
    d = d.with_panel(big_number(
        "p95 duration", "95th percentile of $service's SERVER span duration.", "s",
        promql(quantile(0.95, SERVER), "p95"),
    ))  # fmt: skip
    d = d.with_panel(big_number(
        "Requests in the time range", "SERVER spans of $service in the dashboard's range.",
        "short",
        promql(f"sum(increase({calls}[$__range]))", "requests"),
    ))  # fmt: skip
    d = d.with_panel(chart(
        "Requests/s by operation", "SERVER spans per second of $service, by span name.", "reqps",
        promql(f"sum by (span_name) (rate({calls}[{RATE}]))", "{{span_name}}"),
    ))  # fmt: skip
    d = d.with_panel(chart(
        "Errors/s by operation",
        "SERVER spans with status ERROR per second, by span name (0 when there are none).",
        "reqps",
        promql(f"sum by (span_name) (rate({errors}[{RATE}])) or vector(0)", "{{span_name}}"),
    ))  # fmt: skip
    d = d.with_panel(chart(
        "Error ratio", "Errors over all SERVER spans of $service.", "percentunit",
        promql(error_ratio, "error ratio"),
    ))  # fmt: skip
    d = d.with_panel(chart(
        "Duration p50 / p95 / p99",
        "Quantiles of the span duration histogram (traces_span_metrics_duration_seconds).",
        "s",
        promql(quantile(0.5, SERVER), "p50"),
        promql(quantile(0.95, SERVER), "p95"),
        promql(quantile(0.99, SERVER), "p99"),
    ))  # fmt: skip
    d = d.with_panel(chart(
        "p95 duration by operation", "95th percentile per span name of $service.", "s",
        promql(quantile(0.95, SERVER, "le, span_name"), "{{span_name}}"),
    ))  # fmt: skip
    d = d.with_panel(grid(
        "Spans by operation, kind and status in the time range",
        "Every span kind of $service (CLIENT and INTERNAL too), counted over the range.",
        promql("sum by (span_name, span_kind, status_code) "
               '(increase(traces_span_metrics_calls_total{service_name="$service"}[$__range]))',
               instant=True),
    ))  # fmt: skip
    d = d.with_row(dashboard.Row("SLOs (every SLO of the gateway's config)"))
    d = d.with_panel(chart(
        "Error ratio (5m) against the error budget",
        "slo:sli_error:ratio_rate5m of each SLO, and its budget slo:error_budget:ratio "
        "(1 - objective). Above the budget line the SLO burns faster than allowed.",
        "percentunit",
        promql("slo:sli_error:ratio_rate5m", "{{sloth_slo}}"),
        promql("slo:error_budget:ratio", "{{sloth_slo}} budget"),
    ))  # fmt: skip
    d = d.with_panel(chart(
        "Burn rate, now and over the period",
        "slo:current_burn_rate:ratio (5m) and slo:period_burn_rate:ratio (30d): 1 spends the "
        "budget exactly in the SLO period; the page alerts fire at 14.4 and 6.",
        "short",
        promql("slo:current_burn_rate:ratio", "{{sloth_slo}} now"),
        promql("slo:period_burn_rate:ratio", "{{sloth_slo}} 30d"),
    ))  # fmt: skip
    d = d.with_panel(big_number(
        "Error budget remaining (30d)",
        "slo:period_error_budget_remaining:ratio: the share of the 30-day budget left "
        "(negative: overspent).",
        "percentunit",
        promql("slo:period_error_budget_remaining:ratio", "{{sloth_slo}}"),
        width=12, steps=[(None, "red"), (0, "orange"), (0.25, "green")],
    ))  # fmt: skip
    return d.with_panel(grid(
        "The gateway's own SLO view (/slo)",
        "The gauges each gateway serves on /metrics from its own counts (max over gateways): "
        "budget remaining, 1h burn rate, and whether the page or ticket alert fires.",
        promql("max by (slo) (otelgate_slo_error_budget_remaining_ratio)", instant=True),
        promql('max by (slo) (otelgate_slo_burn_rate{window="1h"})', instant=True),
        promql('max by (slo) (otelgate_slo_alert{severity="page"})', instant=True),
        promql('max by (slo) (otelgate_slo_alert{severity="ticket"})', instant=True),
    ))  # fmt: skip
