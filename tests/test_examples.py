"""The files a newcomer copies from: examples/otelgate.yaml, the OpenSLO file docs/slo.md
loads, and the default configuration docs/configuration.md prints. Each is checked with the
command a user would run, from the repository root as the docs say."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from gateway.config.loading import default_config, parse_config
from gateway.config.model import Config
from tests.support.gateway_process import otelgate_command

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "otelgate.yaml"
OPENSLO = ROOT / "examples" / "slos" / "checkout.yaml"


def otelgate(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*otelgate_command(), *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )


def test_example_config_passes_check_config():
    result = otelgate("check-config", "examples/otelgate.yaml")
    assert result.returncode == 0, result.stderr
    assert "OK (pipelines: traces, metrics, logs)" in result.stdout


def test_example_config_shows_every_section():
    """Every top-level section is in the example, set or (for auth) commented with how."""
    text = EXAMPLE.read_text()
    shown = set(re.findall(r"^#? ?([a-z_]+):", text, flags=re.MULTILINE))
    assert set(Config.model_fields) <= shown, set(Config.model_fields) - shown
    used = yaml.safe_load(text)
    # Every component type the example configures is in a pipeline.
    pipelines = used["service"]["pipelines"].values()
    for kind in ("receivers", "processors", "exporters"):
        wired = {name for pipeline in pipelines for name in pipeline.get(kind, [])}
        assert set(used[kind]) == wired, kind


def test_openslo_file_of_the_docs_loads_and_makes_valid_prometheus_rules(tmp_path):
    for doc in ("slo.md", "configuration.md"):
        assert "openslo: examples/slos/checkout.yaml" in (ROOT / "docs" / doc).read_text()
    rules = tmp_path / "rules.yml"
    result = otelgate("slo-rules", "--openslo", "examples/slos/checkout.yaml", "-o", str(rules))
    assert result.returncode == 0, result.stderr
    names = {g["name"] for g in yaml.safe_load(rules.read_text())["groups"]}
    assert any("checkout-availability" in n for n in names), names
    assert any("checkout-latency" in n for n in names), names
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: .ci/run installs Debian's prometheus package"
    checked = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_documented_default_configuration_is_the_code_default(tmp_path):
    doc = (ROOT / "docs" / "configuration.md").read_text()
    section = doc.split("## The default configuration", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    data_dir = tmp_path / "data"
    documented = parse_config(block.replace("<data_dir>", str(data_dir)), source="docs", environ={})
    code = default_config({"OTELGATE_DATA_DIR": str(data_dir)})
    assert documented.model_dump() == code.model_dump()
