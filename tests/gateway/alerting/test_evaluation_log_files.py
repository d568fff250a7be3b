"""The ``log_file`` condition (the LogFileProblem default rule): files at or above a
rotation status, in the gateway and as PromQL."""

from __future__ import annotations

from gateway.alerting.defaults import DEFAULT_RULES
from gateway.alerting.evaluation import Observations, evaluate
from gateway.alerting.prometheus_rules import alert_rules
from gateway.alerting.rules import RuleConfig
from gateway.logfiles.status import FileStatus


def _status(path: str, level: str) -> FileStatus:
    return FileStatus(
        path=path, level=level, reasons=[], size_bytes=0, rotated_files=0,  # type: ignore[arg-type]
        free_bytes=None, free_ratio=None, last_rotation_at=None, rotations={},
        compressed_bytes=0, gzip_bytes=0, removed_files={}, failures={},
    )  # fmt: skip


FILES = Observations(
    log_files=[
        ("logging", _status("/var/log/otelgate.log", "critical")),
        ("exporter file", _status("/data/out.jsonl", "warning")),
        ("exporter file/b", _status("/data/b.jsonl", "healthy")),
    ]
)


def _rule(**condition: object) -> RuleConfig:
    return RuleConfig.model_validate(
        {"name": "Files", "condition": {"log_file": condition}, "severity": "warning"}
    )


def test_files_at_or_above_the_status() -> None:
    warning = evaluate(_rule(), FILES)
    assert [(s.labels, s.value) for s in warning] == [
        ({"path": "/var/log/otelgate.log", "owner": "logging"}, 2),
        ({"path": "/data/out.jsonl", "owner": "exporter file"}, 1),
    ]
    assert [s.labels["path"] for s in evaluate(_rule(status="critical"), FILES)] == [
        "/var/log/otelgate.log"
    ]
    assert evaluate(_rule(path="/data/b.jsonl"), FILES) == []


def test_the_default_rule_and_its_prometheus_form() -> None:
    [body] = [r for r in DEFAULT_RULES if r["name"] == "LogFileProblem"]
    rule = RuleConfig.model_validate(body)
    assert len(evaluate(rule, FILES)) == 2
    data, skipped = alert_rules([rule, _rule(status="critical", path="/x")])
    first, second = data["groups"][0]["rules"]
    assert skipped == []
    assert first["expr"] == ("max by (job, instance, path, owner) (otelgate_log_file_status) >= 1")
    assert first["for"] == "5m" and first["labels"] == {"severity": "warning"}
    assert first["annotations"]["summary"] == (
        '{{ $labels.owner }} file {{ $labels.path }}: rotation status {{ printf "%.0f" $value }}'
        " (1 warning, 2 critical; see /health log_files)"
    )
    assert second["expr"] == (
        'max by (job, instance, path, owner) (otelgate_log_file_status{path="/x"}) >= 2'
    )
