"""Small helpers over ``grafana-foundation-sdk`` for the compose stack's dashboards.

The SDK builds every panel and query; this module only fixes the house style (data source
references, sizes, query ref ids). The SDK has no Jaeger query type, so ``JaegerQuery`` is the
one place written by hand: a ``Dataquery`` whose JSON is the Jaeger data source's query model.
"""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard, logs, loki, prometheus, stat, table
from grafana_foundation_sdk.builders import timeseries as timeseries_builder
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

# The data sources compose/grafana/provisioning/datasources/datasources.yaml provisions.
PROMETHEUS = model.DataSourceRef(type_val="prometheus", uid="prometheus")
LOKI = model.DataSourceRef(type_val="loki", uid="loki")
JAEGER = model.DataSourceRef(type_val="jaeger", uid="jaeger")

WIDTH, HEIGHT = 12, 8  # half the 24-column grid
REF_IDS = "ABCDEFGH"


def promql(expr: str, legend: str = "", *, instant: bool = False) -> prometheus.Dataquery:
    """One PromQL target (its ref id is set by the panel it goes into)."""
    query = prometheus.Dataquery().expr(expr).datasource(PROMETHEUS)
    if legend:
        query = query.legend_format(legend)
    if instant:
        return query.instant().format(PromQueryFormat.TABLE)
    return query.range()


def logql(expr: str, legend: str = "") -> loki.Dataquery:
    """One LogQL target: a metric query when ``legend`` is given, else a log stream query."""
    query = loki.Dataquery().expr(expr).datasource(LOKI).query_type("range")
    return query.legend_format(legend) if legend else query


class JaegerQuery(cogvariants.Dataquery):
    """The Jaeger data source's query model (``queryType`` ``search``, or a trace id lookup
    when ``query_type`` is None)."""

    def __init__(
        self,
        ref_id: str = "A",
        query_type: str | None = "search",
        service: str | None = None,
        trace_id: str | None = None,
        limit: int | None = None,
    ) -> None:
        self.ref_id = ref_id
        self.query_type = query_type
        self.service = service
        self.trace_id = trace_id
        self.limit = limit

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {"datasource": JAEGER.to_json(), "refId": self.ref_id}
        if self.query_type is not None:
            payload["queryType"] = self.query_type
        if self.service is not None:
            payload["service"] = self.service
        if self.trace_id is not None:
            payload["query"] = self.trace_id
        if self.limit is not None:
            payload["limit"] = self.limit
        return payload


class Jaeger(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builds a ``JaegerQuery`` so it goes into a panel like the SDK's own queries."""

    def __init__(self, query: JaegerQuery) -> None:
        self._query = query

    def build(self) -> cogvariants.Dataquery:
        return self._query


def _with_ref_ids(
    targets: Sequence[prometheus.Dataquery | loki.Dataquery],
) -> list[cogbuilder.Builder[cogvariants.Dataquery]]:
    """The targets with ref ids A, B, C... in order."""
    numbered: list[cogbuilder.Builder[cogvariants.Dataquery]] = []
    for ref_id, target in zip(REF_IDS, targets, strict=False):
        numbered.append(target.ref_id(ref_id))
    return numbered


def chart(
    title: str,
    description: str,
    unit: str,
    *targets: prometheus.Dataquery,
    width: int = WIDTH,
) -> timeseries_builder.Panel:
    """A Prometheus time series panel."""
    return (
        timeseries_builder.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .targets(_with_ref_ids(targets))
        .unit(unit)
        .span(width)
        .height(HEIGHT)
        .fill_opacity(10)
        .legend(
            common_builder.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
        )
    )


def big_number(
    title: str,
    description: str,
    unit: str,
    *targets: prometheus.Dataquery,
    width: int = 6,
    steps: list[tuple[float | None, str]] | None = None,
) -> stat.Panel:
    """A Prometheus stat panel (last value), coloured by ``steps`` ``(from, colour)``."""
    thresholds = (
        dashboard.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=v, color=c) for v, c in steps or [(None, "green")]])
    )
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .targets(_with_ref_ids(targets))
        .unit(unit)
        .span(width)
        .height(HEIGHT)
        .thresholds(thresholds)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.AREA)
        .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]))
    )


def grid(
    title: str, description: str, *targets: prometheus.Dataquery, width: int = WIDTH
) -> table.Panel:
    """A Prometheus table panel of instant queries, one row per series."""
    return (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .targets(_with_ref_ids(targets))
        .span(width)
        .height(HEIGHT)
        .with_transformation(model.DataTransformerConfig(id_val="merge", options={}))
    )


def log_chart(title: str, description: str, *targets: loki.Dataquery) -> timeseries_builder.Panel:
    """A Loki metric query (LogQL ``count_over_time``...) as a time series panel."""
    return (
        timeseries_builder.Panel()
        .title(title)
        .description(description)
        .datasource(LOKI)
        .targets(_with_ref_ids(targets))
        .unit("short")
        .span(WIDTH)
        .height(HEIGHT)
        .draw_style(common.GraphDrawStyle.BARS)
        .fill_opacity(60)
        .stacking(common_builder.StackingConfig().mode(common.StackingMode.NORMAL))
    )


def log_lines(title: str, description: str, expr: str, height: int = 12) -> logs.Panel:
    """A Loki logs panel, newest first, with details (and the trace_id link) on click."""
    return (
        logs.Panel()
        .title(title)
        .description(description)
        .datasource(LOKI)
        .with_target(logql(expr).ref_id("A"))
        .span(24)
        .height(height)
        .show_time(True)
        .enable_log_details(True)
        .wrap_log_message(True)
        .sort_order(common.LogsSortOrder.DESCENDING)
    )


def service_variable(datasource: model.DataSourceRef, query: str) -> dashboard.QueryVariable:
    """The ``service`` template variable, filled from ``query`` on ``datasource``."""
    return (
        dashboard.QueryVariable("service")
        .label("Service")
        .datasource(datasource)
        .query(query)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
    )


def board(uid: str, title: str, description: str) -> dashboard.Dashboard:
    """A dashboard with the house defaults: last hour, refreshed every 30 s, tagged otelgate."""
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["otelgate"])
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
    )
