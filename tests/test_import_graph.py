"""The packages' import graph (built by grimp, every import statement including those inside
functions) has no cycles, and no module imports the package it sits in."""

from __future__ import annotations

import graphlib

import grimp
import pytest

PACKAGES = ("gateway", "exporters", "instrumentation")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def test_no_import_cycles(graph: grimp.ImportGraph) -> None:
    imports = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    try:
        graphlib.TopologicalSorter(imports).prepare()
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_no_module_imports_a_package_above_it(graph: grimp.ImportGraph) -> None:
    # Except a package that imports nothing of the project (``gateway`` holds only
    # ``__version__``): reading a constant from it cannot close a circle.
    upward = [
        f"{module} imports {imported}"
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
        if module.startswith(imported + ".") and graph.find_modules_directly_imported_by(imported)
    ]
    assert upward == []


def test_the_graph_covers_every_package(graph: grimp.ImportGraph) -> None:
    # A broken build (no modules found) must not pass the tests above by having no edges.
    for package in PACKAGES:
        assert sum(m.startswith(package + ".") for m in graph.modules) >= 5
    assert "gateway.components" in graph.find_modules_directly_imported_by("gateway.config.model")
