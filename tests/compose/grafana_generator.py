"""The compose stack's dashboard generator (compose/grafana/dashboards.py) loaded in-process,
and the queries of the dashboards it makes, for the tests of this folder."""

from __future__ import annotations

import importlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

COMPOSE = Path(__file__).resolve().parents[2] / "compose"
GRAFANA = COMPOSE / "grafana"


def generator() -> ModuleType:
    """compose/grafana/dashboards.py as a module (its folder is not a package)."""
    if str(GRAFANA) not in sys.path:
        sys.path.insert(0, str(GRAFANA))
    return importlib.import_module("dashboards")


def generated_dashboards() -> dict[str, dict[str, Any]]:
    """The dashboards the generator makes now, by file name, as Grafana JSON."""
    module = generator()
    return {
        path.name: json.loads(content)
        for path, content in module.generated_files().items()
        if path.parent == module.DASHBOARDS_DIR
    }


@dataclass(frozen=True)
class PanelQuery:
    """One target of one panel: its data source uid and the query (``expr`` for PromQL and
    LogQL; the whole target for Jaeger)."""

    dashboard: str
    panel: str
    datasource: str
    ref_id: str
    expr: str
    target: dict[str, Any]

    @property
    def where(self) -> str:
        return f"{self.dashboard} / {self.panel!r} / {self.ref_id}"


def panel_queries(dashboards: dict[str, dict[str, Any]]) -> list[PanelQuery]:
    """Every target of every panel (rows have none), in dashboard order."""
    found = []
    for board in dashboards.values():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                source = target.get("datasource") or panel["datasource"]
                found.append(PanelQuery(
                    board["title"], panel["title"], source["uid"], target["refId"],
                    target.get("expr", ""), target,
                ))  # fmt: skip
    return found
