"""The *Logs* (Loki) and *Traces* (Jaeger) dashboards.

Loki stream labels are the ones the gateway's Loki exporter sets (exporters/loki/mapping.py,
docs/loki-jaeger.md): ``service_name`` and the other resource labels. Levels come from
``detected_level``, which Loki derives from the ``severity_number`` the exporter puts in
structured metadata, and ``severity_text``, the structured metadata the exporter writes as sent.
``trace_id`` is structured metadata too: the Loki data source's derived field turns it into a
link to the trace in Jaeger, and the Jaeger data source's trace-to-logs query goes back.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard, table
from grafana_foundation_sdk.models import dashboard as model
from grafana_kit import (
    JAEGER,
    LOKI,
    PROMETHEUS,
    WIDTH,
    Jaeger,
    JaegerQuery,
    board,
    chart,
    log_chart,
    log_lines,
    logql,
    promql,
    service_variable,
)
from metrics_dashboards import RATE, SERVICES_QUERY

STREAMS = '{service_name=~"$service"}'
TRACE_LINK = (
    "Open a line's details: its trace_id is a link to the trace in Jaeger (the Loki data "
    "source's derived field, compose/grafana/provisioning/datasources/datasources.yaml)."
)
TRACES_UID = "otelgate-traces"


def logs() -> dashboard.Dashboard:
    """Log volume by service and level, and the lines themselves."""
    d = board(
        "otelgate-logs",
        "otelgate: logs",
        "Logs the gateway delivered to Loki, by service and level. " + TRACE_LINK,
    )
    d = d.with_variable(
        service_variable(LOKI, "label_values(service_name)").include_all(True).all_value(".+")
    )
    d = d.with_variable(
        dashboard.TextBoxVariable("search").label("Line contains").default_value("")
    )
    d = d.with_panel(log_chart(
        "Log lines by service",
        "Lines per interval of each service (stream label service_name).",
        logql(f"sum by (service_name) (count_over_time({STREAMS} [$__auto]))", "{{service_name}}"),
    ))  # fmt: skip
    d = d.with_panel(log_chart(
        "Log lines by level",
        "Lines per interval by detected_level, which Loki derives from the severity_number "
        "the gateway sends as structured metadata.",
        logql(f"sum by (detected_level) (count_over_time({STREAMS} [$__auto]))",
              "{{detected_level}}"),
    ))  # fmt: skip
    d = d.with_panel(log_chart(
        "Error lines by service",
        "Lines at level error or fatal, per service.",
        logql("sum by (service_name) "
              f'(count_over_time({STREAMS} | detected_level=~"error|fatal" [$__auto]))',
              "{{service_name}}"),
    ))  # fmt: skip
    d = d.with_panel(log_chart(
        "Log lines by severity text",
        "Lines per interval by severity_text, the level name as the service's SDK sent it "
        "(structured metadata written by the gateway).",
        logql(f"sum by (severity_text) (count_over_time({STREAMS} [$__auto]))",
              "{{severity_text}}"),
    ))  # fmt: skip
    d = d.with_panel(log_lines(
        "Logs", "The lines of the selected services that contain the search text. " + TRACE_LINK,
        f'{STREAMS} |= "$search"',
    ))  # fmt: skip
    return d.with_panel(log_lines(
        "Errors and warnings", "Lines at level warn, error or fatal. " + TRACE_LINK,
        f'{STREAMS} | detected_level=~"warn|error|fatal"', height=10,
    ))  # fmt: skip


def trace_search() -> table.Panel:
    """Jaeger's search of the service's recent traces; a trace id opens it in this dashboard."""
    link = {
        "title": "Show this trace here",
        "url": f"/d/{TRACES_UID}/?var-service=${{service}}&var-trace_id=${{__value.raw}}"
        "&${__url_time_range}",
    }
    return (
        table.Panel()
        .title("Recent traces of $service (Jaeger search)")
        .description(
            "The Jaeger data source's search for the service's traces in the time range. Click "
            "a trace id to show it in the trace panel below (or open it in Explore)."
        )
        .datasource(JAEGER)
        .with_target(Jaeger(JaegerQuery(service="$service", limit=20)))
        .span(24)
        .height(9)
        .override_by_name("traceID", [model.DynamicConfigValue("links", [link])])
    )


def trace_view() -> dashboard.Panel:
    """Grafana's traces panel showing the trace whose id is in ``$trace_id``."""
    return (
        dashboard.Panel()
        .type("traces")
        .title("Trace $trace_id")
        .description(
            "The trace picked in the search above (or typed into trace_id). Each span's "
            "'Logs for this span' runs the Jaeger data source's trace-to-logs query in Loki "
            '({service_name="<the span\'s service>"} | trace_id="<the trace id>").'
        )
        .datasource(JAEGER)
        .with_target(Jaeger(JaegerQuery(query_type=None, trace_id="$trace_id")))
        .span(24)
        .height(14)
    )


def traces() -> dashboard.Dashboard:
    """Span volume from span metrics, Jaeger search and trace view, and the trace's logs."""
    d = board(
        TRACES_UID,
        "otelgate: traces",
        "Traces the gateway delivered to Jaeger: search by service, open one, and read its "
        "logs. Trace to logs: the Jaeger data source's tracesToLogsV2 query; logs to trace: "
        "the Loki data source's trace_id derived field.",
    )
    d = d.with_variable(service_variable(PROMETHEUS, SERVICES_QUERY))
    d = d.with_variable(dashboard.TextBoxVariable("trace_id").label("Trace id").default_value(""))
    d = d.with_panel(chart(
        "Spans/s by service and kind",
        "Every service's spans from the span metrics (traces_span_metrics_calls_total).",
        "cps",
        promql(f"sum by (service_name, span_kind) (rate(traces_span_metrics_calls_total[{RATE}]))",
               "{{service_name}} {{span_kind}}"),
    ))  # fmt: skip
    d = d.with_panel(chart(
        "Error spans/s by service",
        "Spans with status ERROR per service (0 when there are none).",
        "cps",
        promql("sum by (service_name) (rate(traces_span_metrics_calls_total"
               f'{{status_code="STATUS_CODE_ERROR"}}[{RATE}])) or vector(0)',
               "{{service_name}}"),
        width=WIDTH,
    ))  # fmt: skip
    d = d.with_panel(trace_search())
    d = d.with_panel(trace_view())
    return d.with_panel(log_lines(
        "Logs of trace $trace_id",
        "Every service's lines whose trace_id structured metadata is the trace's id "
        "(the same filter as the trace view's 'Logs for this span'). " + TRACE_LINK,
        '{service_name=~".+"} | trace_id="$trace_id"', height=10,
    ))  # fmt: skip
