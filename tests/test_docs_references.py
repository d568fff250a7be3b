"""The operator docs name only metrics the gateway registers, and every relative link in the
docs points at a file (and heading) that exists.

Metric names come from a Gateway built in-process (not started) with every component that
registers metrics, read back from its registry: a doc naming a metric that no code registers,
or a label the metric does not have, fails here.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from gateway.config.loading import parse_config
from gateway.service import Gateway

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
METRIC_DOCS = [DOCS / "operations.md", DOCS / "troubleshooting.md"]
LINKED_DOCS = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
SOURCES = [ROOT / "gateway", ROOT / "exporters"]
# Labels whose values the docs quote from the code (other values are ids from a config).
VALUE_LABELS = {"reason", "outcome", "limit", "state"}

METRIC = re.compile(r"\botelgate_[a-z0-9_]*[a-z0-9](?![a-z0-9_*])")
LABELLED = re.compile(r"\b(otelgate_[a-z0-9_]*[a-z0-9])\{([^}]*)\}")
LABEL = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=\s*\"([^\"]*)\")?\s*")
FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
REFERENCE = re.compile(r"^\s*\[[^\]\n]+\]:\s*(\S+)", re.M)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")


def gateway_config(tmp: Path) -> str:
    """A configuration with every component that registers metrics of its own."""
    return yaml.safe_dump(
        {
            "receivers": {
                "otlp": {
                    "protocols": {
                        "grpc": {"endpoint": "127.0.0.1:0"},
                        "http": {"endpoint": "127.0.0.1:0"},
                    }
                },
                "hostmetrics": {},
            },
            "processors": {"redaction": {}, "spanmetrics": {}},
            "exporters": {
                "prometheus": {},
                "store": {},
                "file": {"path": str(tmp / "out.jsonl")},
            },
            "service": {
                "pipelines": {
                    "traces": {
                        "receivers": ["otlp"],
                        "processors": ["redaction", "spanmetrics"],
                        "exporters": ["store", "file"],
                    },
                    "metrics": {"receivers": ["otlp", "hostmetrics"], "exporters": ["prometheus"]},
                    "logs": {
                        "receivers": ["otlp"],
                        "processors": ["redaction"],
                        "exporters": ["store"],
                    },
                }
            },
            "admin": {"endpoint": "127.0.0.1:0"},
            "store": {"path": str(tmp / "otelgate.db")},
            "auth": {"tokens": [{"name": "t", "token": "t" * 24, "scopes": ["ingest", "read"]}]},
            "audit": {"path": str(tmp / "audit" / "audit.jsonl")},
            "slos": [{"name": "a", "service": "s", "objective": 0.99, "sli": {"availability": {}}}],
        }
    )


def exposed(name: str, kind: str) -> set[str]:
    """The sample names a metric family of ``kind`` shows on ``/metrics``."""
    suffixes = {
        "counter": ["_total", "_created"],
        "histogram": ["_bucket", "_count", "_sum", "_created"],
        "gaugehistogram": ["_bucket", "_gcount", "_gsum"],
        "summary": ["", "_count", "_sum", "_created"],
        "info": ["_info"],
    }.get(kind, [""])
    return {name + suffix for suffix in suffixes}


def registered_metrics(registry: CollectorRegistry) -> dict[str, set[str]]:
    """Every exposed ``otelgate_*`` sample name with its label names. A labelled metric with
    no child yet yields no samples, so its label names come from the collector itself."""
    found: dict[str, set[str]] = defaultdict(set)
    for collector in list(registry._collector_to_names):  # every registered collector
        own = set(getattr(collector, "_labelnames", ()))
        for family in collector.collect():
            labels = own | set(getattr(family, "_labelnames", ()))
            labels |= {key for sample in family.samples for key in sample.labels}
            names = exposed(family.name, family.type) | {s.name for s in family.samples}
            for name in names:
                if name.startswith("otelgate_"):
                    found[name] |= labels
    return found


@pytest.fixture(scope="module")
def metrics(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    tmp = tmp_path_factory.mktemp("docs-gateway")
    config = parse_config(gateway_config(tmp), environ={})
    gateway = Gateway(config, reload_config=lambda: config)  # registers the reload gauges
    return registered_metrics(gateway.registry)


def source_text() -> str:
    return "\n".join(
        path.read_text(encoding="utf-8") for root in SOURCES for path in root.rglob("*.py")
    )


def prose(text: str) -> str:
    """``text`` without fenced code blocks (metric names in them are still checked)."""
    return FENCE.sub("", text)


def test_a_gateway_registers_the_metrics_the_checks_rely_on(metrics):
    # If building the gateway stopped registering these, the checks below would mean little.
    for name in (
        "otelgate_receiver_accepted_items_total",
        "otelgate_exporter_queue_size",
        "otelgate_prometheus_series",
        "otelgate_store_file_bytes",
        "otelgate_redaction_masked_total",
        "otelgate_config_last_reload_successful",
    ):
        assert name in metrics
    assert metrics["otelgate_exporter_failed_items_total"] == {"exporter", "signal"}


@pytest.mark.parametrize("doc", METRIC_DOCS, ids=lambda p: p.name)
def test_every_metric_a_doc_names_is_registered(doc, metrics):
    text = doc.read_text(encoding="utf-8")
    named = set(METRIC.findall(text))
    assert named, f"{doc.name} names no metric: is the pattern still right?"
    unknown = sorted(named - set(metrics))
    assert not unknown, f"{doc.name} names metrics no code registers: {unknown}"


@pytest.mark.parametrize("doc", METRIC_DOCS, ids=lambda p: p.name)
def test_every_label_a_doc_names_exists(doc, metrics):
    text = doc.read_text(encoding="utf-8")
    code = source_text()
    problems = []
    for name, inside in LABELLED.findall(text):
        for part in inside.split(","):
            match = LABEL.fullmatch(part)
            if match is None:
                if part.strip().strip(".") and "..." not in part:
                    problems.append(f"{name}{{{inside}}}: cannot read {part!r}")
                continue
            label, value = match.groups()
            if label not in metrics.get(name, set()):
                problems.append(f"{name} has no label {label!r}")
            elif value and label in VALUE_LABELS and f'"{value}"' not in code:
                problems.append(f"{name}{{{label}={value!r}}}: no such value in the code")
    assert not problems, "\n".join(problems)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    seen: Counter[str] = Counter()
    found = set(HTML_ANCHOR.findall(text))
    for heading in HEADING.findall(prose(text)):
        base = slug(heading)
        found.add(base if not seen[base] else f"{base}-{seen[base]}")
        seen[base] += 1
    return found


def links(path: Path) -> list[str]:
    text = INLINE_CODE.sub("", prose(path.read_text(encoding="utf-8")))
    return LINK.findall(text) + REFERENCE.findall(text)


def test_slug_follows_github():
    assert slug("Health, host metrics and span metrics") == "health-host-metrics-and-span-metrics"
    assert slug("Host metrics (`hostmetrics` receiver)") == "host-metrics-hostmetrics-receiver"
    assert slug("429 with `Retry-After` / `UNAVAILABLE`") == "429-with-retry-after--unavailable"
    assert slug("`store`") == "store"


@pytest.mark.parametrize("doc", LINKED_DOCS, ids=lambda p: p.name)
def test_every_relative_link_points_at_something(doc):
    broken = []
    for target in links(doc):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:...
            continue
        path_part, _, fragment = target.partition("#")
        path = (doc.parent / path_part).resolve() if path_part else doc
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif fragment and path.suffix == ".md" and fragment not in anchors(path):
            broken.append(f"{target}: no heading #{fragment} in {path.name}")
    assert not broken, f"{doc.relative_to(ROOT)}:\n" + "\n".join(broken)
