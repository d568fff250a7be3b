"""SLO definitions: the ``slos`` config section and OpenSLO v1 files, with errors by path."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config.issues import ConfigError
from gateway.config.loading import parse_config
from gateway.slo.openslo import load_openslo

BASE = {"service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file"]}}},
        "receivers": {"otlp": {"protocols": {"http": None}}},
        "exporters": {"file": {"path": "traces.jsonl"}}}  # fmt: skip

OPENSLO = textwrap.dedent("""\
    apiVersion: openslo/v1
    kind: Service
    metadata: {name: orders}
    spec: {description: the orders API}
    ---
    - apiVersion: openslo/v1
      kind: SLI
      metadata: {name: orders-errors}
      spec:
        ratioMetric:
          counter: true
          good: {metricSource: {type: otelgate, spec: {spans: non_error, spanName: GET /orders}}}
          total: {metricSource: {type: otelgate, spec: {spans: all, spanName: GET /orders}}}
    - apiVersion: openslo/v1
      kind: SLO
      metadata: {name: orders-availability, displayName: Orders availability}
      spec:
        description: Orders answer without errors
        service: orders
        indicatorRef: orders-errors
        timeWindow: [{duration: 28d, isRolling: true}]
        budgetingMethod: Occurrences
        objectives: [{displayName: good, target: 0.995}]
    ---
    apiVersion: openslo/v1
    kind: SLO
    metadata: {name: orders-latency}
    spec:
      service: orders
      indicator:
        metadata: {name: orders-fast}
        spec:
          thresholdMetric: {metricSource: {type: OtelGate, spec: {spans: duration}}}
      timeWindow: [{duration: 1w, isRolling: true}]
      objectives: [{op: lte, value: 0.25, targetPercent: 99}]
    ---
    apiVersion: openslo/v1
    kind: SLO
    metadata: {name: payments-ratio}
    spec:
      service: payments
      indicator:
        metadata: {name: payments-ok}
        spec:
          ratioMetric:
            good:
              metricSource:
                type: otelgate
                spec: {metric: payments.processed, attributes: {outcome: ok}}
            total:
              metricSource:
                type: otelgate
                spec: {metric: payments.processed, prometheusName: payments_total}
      objectives: [{target: 0.9}]
    """)


def _write(tmp_path: Path, text: str, name: str = "slos.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_openslo_maps_onto_the_three_sli_kinds(tmp_path: Path):
    slos = load_openslo(_write(tmp_path, OPENSLO))
    assert [s.name for s in slos] == ["orders-availability", "orders-latency", "payments-ratio"]
    availability, latency, ratio = slos
    assert availability.sli.kind == "availability"
    assert availability.sli.availability is not None
    assert availability.sli.availability.span_name == "GET /orders"
    assert (availability.service, availability.objective) == ("orders", 0.995)
    assert availability.window_minutes == 28 * 1440
    assert availability.description == "Orders answer without errors"
    assert latency.sli.latency is not None and latency.sli.latency.threshold == 0.25
    assert latency.objective == pytest.approx(0.99) and latency.window_minutes == 7 * 1440
    assert ratio.sli.ratio is not None and ratio.window_minutes == 30 * 1440  # the default
    assert ratio.sli.ratio.good.attributes == {"outcome": "ok"}
    assert ratio.sli.ratio.total.prometheus_name == "payments_total"


def _problems(tmp_path: Path, slo_spec: dict[str, Any]) -> list[str]:
    objects = [{"apiVersion": "openslo/v1", "kind": "SLO", "metadata": {"name": "s"},
                "spec": slo_spec}]  # fmt: skip
    path = _write(tmp_path, yaml.safe_dump_all(objects), "f.yaml")
    with pytest.raises(ConfigError) as caught:
        load_openslo(path)
    return [str(issue).replace(path, "F") for issue in caught.value.errors]


def _otelgate(**spec: str) -> dict[str, Any]:
    return {"metricSource": {"type": "otelgate", "spec": spec}}


SPANS = {"ratioMetric": {"good": _otelgate(spans="non_error"), "total": _otelgate(spans="all")}}
GOOD = {"service": "a", "objectives": [{"target": 0.99}], "indicator": {"spec": SPANS}}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"timeWindow": [{"duration": "1M", "isRolling": False,
                          "calendar": {"startTime": "2022-01-01 12:00:00", "timeZone": "UTC"}}]},
         "F[0].spec.timeWindow[0]: only rolling windows are supported (isRolling: true, no "
         "calendar)"),
        ({"timeWindow": [{"duration": "1M", "isRolling": True}]},
         "F[0].spec.timeWindow[0].duration: unsupported duration '1M' (use m, h, d or w)"),
        ({"budgetingMethod": "Timeslices"},
         "F[0].spec.budgetingMethod: only Occurrences is supported (got 'Timeslices')"),
        ({"objectives": [{"target": 0.9}, {"target": 0.99}]},
         "F[0].spec.objectives: must be a list with exactly one objective"),
        ({"objectives": [{"target": 0.9, "timeSliceTarget": 0.95}]},
         "F[0].spec.objectives[0].timeSliceTarget: not supported"),
        ({"objectives": [{"target": 99.5}]},
         "F[0].spec.objectives[0].target: must be a ratio between 0 and 1 (got 99.5)"),
        ({"alertPolicies": ["fast-burn"]},
         "F[0].spec.alertPolicies: not supported (otelgate alerts on multi-window burn rates "
         "itself)"),
        ({"indicator": None},
         "F[0].spec: give exactly one of indicator or indicatorRef"),
        ({"indicator": {"spec": {"ratioMetric": {
            "good": {"metricSource": {"type": "Prometheus", "spec": {"query": "sum(up)"}}},
            "total": {"metricSource": {"type": "otelgate", "spec": {"spans": "all"}}}}}}},
         "F[0].spec.indicator.spec.ratioMetric.good.metricSource.type: only type otelgate is "
         "supported (got 'Prometheus')"),
        ({"indicator": {"spec": {"ratioMetric": {"bad": {}, "total": {}}}}},
         "F[0].spec.indicator.spec.ratioMetric.bad: not supported (use good and total)"),
        ({"indicator": {"spec": {"thresholdMetric": {
            "metricSource": {"type": "otelgate", "spec": {"spans": "duration"}}}}}},
         "F[0].spec.indicator.spec.thresholdMetric: the objective needs op: lte and value "
         "(seconds)"),
        ({"service": None},
         "F[0].spec.service: Input should be a valid string"),
    ],
)  # fmt: skip
def test_unsupported_openslo_constructs_are_errors_with_paths(tmp_path, change, expected):
    spec = {**GOOD, **change}
    assert expected in _problems(tmp_path, {k: v for k, v in spec.items() if v is not None})


def test_openslo_file_level_problems(tmp_path: Path):
    with pytest.raises(ConfigError, match="OpenSLO file not found"):
        load_openslo(str(tmp_path / "missing.yaml"))
    path = _write(
        tmp_path, "apiVersion: openslo/v1alpha\nkind: SLO\n---\nkind: Thing\n", "old.yaml"
    )
    with pytest.raises(ConfigError) as caught:
        load_openslo(path)
    assert [i.path for i in caught.value.errors] == [
        f"{path}[0].apiVersion",
        f"{path}[1].apiVersion",
    ]
    unknown_ref = {**GOOD, "indicator": None, "indicatorRef": "nope"}
    del unknown_ref["indicator"]
    assert "F[0].spec.indicatorRef: no kind: SLI named 'nope' in this file" in _problems(
        tmp_path, unknown_ref
    )


def test_config_accepts_inline_slos_and_openslo_files(tmp_path: Path):
    path = _write(tmp_path, OPENSLO)
    config = parse_config(yaml.safe_dump({**BASE, "slos": [
        {"name": "api", "service": "api", "objective": 0.999, "sli": {"availability": None}},
        {"openslo": path},
    ]}), environ={})  # fmt: skip
    names = [s.name for s in config.slos.definitions()]
    assert names == ["api", "orders-availability", "orders-latency", "payments-ratio"]
    api = config.slos.definitions()[0]
    assert api.window_minutes == 43200 and api.alerting.page_quick == 14.4
    assert parse_config(yaml.safe_dump({**BASE, "slos": None}), environ={}).slos.definitions() == []


def _config_problems(slos: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(yaml.safe_dump({**BASE, "slos": slos}), environ={})
    return [str(issue) for issue in caught.value.errors]


@pytest.mark.parametrize(
    ("slo", "expected"),
    [
        ({"objective": 99.9}, "slos[0].objective: must be a ratio below 1 (got 99.9; for 99.9% "
                              "write 0.999)"),
        ({"objective": 1}, "slos[0].objective: must be less than 1 (got 1)"),
        ({"window": "90s"}, "slos[0].window: must be whole minutes from 1h to 366d"),
        ({"window": "2y"}, "slos[0].window: invalid duration '2y'"),
        ({"sli": {"availability": None, "latency": {"threshold": 1}}},
         "slos[0].sli: set exactly one of availability, latency or ratio (got availability and "
         "latency)"),
        ({"sli": {}}, "slos[0].sli: set exactly one of availability, latency or ratio"),
        ({"sli": {"latency": {"threshold": "fast"}}}, "slos[0].sli.latency.threshold: invalid "
                                                      "duration 'fast'"),
        ({"sli": {"ratio": {"good": {"metric": "a"}}}}, "slos[0].sli.ratio.total: is required"),
        ({"name": "bad name!"}, "slos[0].name: 'bad name!' must be 1-63 letters"),
        ({"alerting": {"page_quick": 0}}, "slos[0].alerting.page_quick: must be greater than 0"),
        ({"colour": "red"}, "slos[0].colour: unknown key"),
    ],
)  # fmt: skip
def test_inline_slo_errors_have_paths(slo, expected):
    base = {"name": "a", "service": "orders", "objective": 0.99, "sli": {"availability": None}}
    problems = _config_problems([{**base, **slo}])
    assert any(p.startswith(expected) for p in problems), problems


def test_config_level_slo_errors(tmp_path: Path):
    a = {"name": "a", "service": "orders", "objective": 0.99, "sli": {"availability": None}}
    assert _config_problems([a, {**a, "service": "other"}]) == [
        "slos: SLO name 'a' is defined twice (slos[0] and slos[1])"
    ]
    assert _config_problems({"a": 1}) == ["slos: must be a list (got a mapping)"]
    assert _config_problems([1]) == ["slos[0]: must be a mapping (got 1)"]
    bad = _write(tmp_path, "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec: {}\n")
    problems = _config_problems([{"openslo": bad}])
    assert problems[0].startswith("slos[0]: invalid OpenSLO file:")
    assert f"{bad}[0].spec.objectives: must be a list with exactly one objective" in problems[0]
    assert _config_problems([{"openslo": bad, "name": "x"}])[0] == "slos[0].name: unknown key"
