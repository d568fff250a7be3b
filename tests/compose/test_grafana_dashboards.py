"""The compose stack's Grafana dashboards are what compose/grafana/dashboards.py makes, use the
provisioned data sources, and are provisioned from where compose mounts them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from exporters.loki.mapping import DEFAULT_RESOURCE_LABELS
from tests.compose.grafana_generator import (
    COMPOSE,
    GRAFANA,
    generated_dashboards,
    generator,
    panel_queries,
)

DATASOURCES = GRAFANA / "provisioning" / "datasources" / "datasources.yaml"
# Grafana's own variables the dashboards use.
BUILT_IN = {"__rate_interval", "__range", "__auto", "__interval", "__value", "__url_time_range"}
# Structured metadata the Loki exporter writes (trace_id, severity_text) and the level Loki
# derives from its severity_number (docs/loki-jaeger.md).
LOKI_METADATA = {"trace_id", "severity_text", "detected_level"}


def provisioned_uids() -> set[str]:
    sources = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    return {source["uid"] for source in sources}


def test_committed_files_are_exactly_what_the_generator_makes():
    files = generator().generated_files()
    assert len(files) == 5  # four dashboards and the provider file
    for path, content in files.items():
        assert path.is_file(), f"{path} missing: run python compose/grafana/dashboards.py"
        assert path.read_bytes() == content, (
            f"{path} is stale: run python compose/grafana/dashboards.py"
        )
        assert content.endswith(b"\n") and b"\r" not in content
    # Deterministic: a second run makes the same bytes.
    assert generator().generated_files() == files


def test_check_mode_names_the_stale_file(tmp_path, monkeypatch, capsys):
    module = generator()
    monkeypatch.setattr(module, "DASHBOARDS_DIR", tmp_path / "dashboards")
    monkeypatch.setattr(module, "PROVIDER_FILE", tmp_path / "provisioning" / "dashboards.yaml")
    assert module.main(["--check"]) == 1  # nothing written yet
    assert module.main([]) == 0
    assert module.main(["--check"]) == 0
    services = tmp_path / "dashboards" / "services.json"
    services.write_text(services.read_text().replace("p95", "p90"))
    capsys.readouterr()
    assert module.main(["--check"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"stale: {services} (run python compose/grafana/dashboards.py)"
    ]


def test_generator_runs_as_a_script_and_the_committed_files_pass_its_check():
    result = subprocess.run(
        [sys.executable, str(GRAFANA / "dashboards.py"), "--check"],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_panel_and_variable_uses_a_provisioned_data_source():
    uids = provisioned_uids()
    assert uids == {"prometheus", "loki", "jaeger"}
    dashboards = generated_dashboards()
    for name, board in dashboards.items():
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] in uids, (name, panel["title"])
            assert panel["targets"], (name, panel["title"])
        for variable in board["templating"].get("list", []):
            if variable["type"] == "query":
                assert variable["datasource"]["uid"] in uids, (name, variable["name"])
    queries = panel_queries(dashboards)
    assert {q.datasource for q in queries} == uids
    assert all(q.datasource in uids for q in queries)


def test_dashboard_uids_and_titles_are_unique_and_stable():
    dashboards = generated_dashboards()
    uids = [board["uid"] for board in dashboards.values()]
    assert sorted(uids) == ["otelgate-gateway", "otelgate-logs", "otelgate-services",
                            "otelgate-traces"]  # fmt: skip
    titles = [board["title"] for board in dashboards.values()]
    assert len(set(titles)) == len(titles)
    for board in dashboards.values():
        ids = [panel["id"] for panel in board["panels"]]
        assert ids == list(range(1, len(ids) + 1)), board["uid"]


def test_provider_reads_the_folder_compose_mounts():
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "dashboards.yaml")
                              .read_text())  # fmt: skip
    [entry] = provider["providers"]
    assert entry["type"] == "file"
    grafana = yaml.safe_load((COMPOSE / "docker-compose.yaml").read_text())["services"]["grafana"]
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"])
    assert mounts["./grafana/dashboards"] == entry["options"]["path"]
    assert (COMPOSE / "grafana" / "dashboards").resolve() == generator().DASHBOARDS_DIR
    # The provisioning folder (which holds the provider file) is mounted where Grafana reads it.
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"


def test_every_variable_a_query_uses_is_defined():
    for board in generated_dashboards().values():
        defined = {variable["name"] for variable in board["templating"].get("list", [])}
        for panel in board["panels"]:
            text = str(panel.get("targets", [])) + panel["title"]
            used = set(re.findall(r"\$\{?(\w+)", text))
            assert used <= defined | BUILT_IN, (board["uid"], panel["title"], used - defined)


def test_logql_uses_the_labels_the_loki_exporter_sets():
    labels = set(DEFAULT_RESOURCE_LABELS.values())
    loki = [q for q in panel_queries(generated_dashboards()) if q.datasource == "loki"]
    assert len(loki) == 7
    for query in loki:
        selectors = re.findall(r"\{([^{}]*)\}", query.expr)
        assert selectors, query.where
        for selector in selectors:
            names = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", selector))
            assert names and names <= labels, (query.where, names - labels)
        filters = set(re.findall(r"\|\s*(\w+)\s*(?:=~|!~|!=|=)", query.expr))
        grouped = set(re.findall(r"by \(([\w, ]+)\)", query.expr))
        grouped_names = {n.strip() for g in grouped for n in g.split(",")}
        assert filters | grouped_names <= labels | LOKI_METADATA, query.where


def test_jaeger_panels_search_by_service_and_show_the_picked_trace():
    traces = generated_dashboards()["traces.json"]
    jaeger = [q for q in panel_queries({"traces": traces}) if q.datasource == "jaeger"]
    by_type = {q.target.get("queryType"): q.target for q in jaeger}
    assert by_type["search"]["service"] == "$service"
    assert by_type[None]["query"] == "$trace_id"  # a trace id lookup
    panels = {panel["type"] for panel in traces["panels"]}
    assert {"traces", "table", "logs"} <= panels


@pytest.mark.parametrize("name", ["gateway.json", "services.json"])
def test_prometheus_dashboards_query_only_prometheus(name):
    queries = panel_queries({name: generated_dashboards()[name]})
    assert queries and {q.datasource for q in queries} == {"prometheus"}
    assert all(q.expr for q in queries)
