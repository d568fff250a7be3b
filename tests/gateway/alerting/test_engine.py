"""The alert state machine with explicit times: pending, firing after ``for``,
``keep_firing_for``, acknowledgement, resolution, annotations, and rules replaced on reload."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.alerting.alerts import fingerprint
from gateway.alerting.engine import Alert, AlertEngine, Transition
from gateway.alerting.evaluation import Observations
from gateway.alerting.rules import RuleConfig
from gateway.health.config import ServiceThresholds
from gateway.health.services import Latency, ServiceReport

T0 = 1_800_000_000.0


def rule(name: str = "Errors", **more: Any) -> RuleConfig:
    body: dict[str, Any] = {"condition": {"error_rate": {"above": 0.05}}, **more}
    return RuleConfig.model_validate({"name": name, **body})


def report(name: str, error_rate: float) -> ServiceReport:
    errors = round(error_rate * 1000)
    return ServiceReport(
        name=name,
        status="healthy",
        reasons=[],
        last_seen=T0,
        seconds_since_seen=0.0,
        signals={},
        window_seconds=300.0,
        requests=1000,
        errors=errors,
        request_rate=10.0,
        error_rate=errors / 1000,
        latency=Latency(None, None, None),
        thresholds=ServiceThresholds(),
    )


def errors(**rates: float) -> Observations:
    """Services with these error rates (``orders=0.1``)."""
    return Observations(services=[report(name, rate) for name, rate in rates.items()])


BAD = errors(orders=0.1)
GOOD = errors(orders=0.0)


def moves(changes: list[Transition]) -> list[tuple[str | None, str]]:
    return [(c.before, c.after) for c in changes]


def only(engine: AlertEngine) -> Alert:
    assert len(engine.alerts) == 1, engine.alerts
    return next(iter(engine.alerts.values()))


def test_for_zero_fires_at_once() -> None:
    engine = AlertEngine([rule()])
    changes = engine.evaluate(BAD, T0)
    assert moves(changes) == [(None, "firing")]
    alert = changes[0].alert
    assert changes[0].at == T0
    assert (alert.state, alert.started_at, alert.fired_at, alert.value) == ("firing", T0, T0, 0.1)
    assert alert.labels == {"alertname": "Errors", "severity": "warning", "service": "orders"}
    assert alert.fingerprint == fingerprint(alert.labels)
    assert alert.rule == "Errors" and alert.service == "orders" and alert.fired
    assert engine.evaluate(BAD, T0 + 5) == []  # still firing: nothing new
    assert only(engine) is alert and alert.last_held_at == T0 + 5


def test_for_keeps_the_alert_pending_until_it_has_held_that_long() -> None:
    engine = AlertEngine([rule(**{"for": "10s"})])
    assert moves(engine.evaluate(BAD, T0)) == [(None, "pending")]
    alert = only(engine)
    assert alert.state == "pending" and alert.fired_at is None and not alert.fired
    assert engine.evaluate(BAD, T0 + 5) == []
    assert engine.evaluate(BAD, T0 + 9.999) == []
    changes = engine.evaluate(BAD, T0 + 10)
    assert moves(changes) == [("pending", "firing")]
    assert changes[0].alert is alert
    assert (alert.state, alert.started_at, alert.fired_at) == ("firing", T0, T0 + 10)


def test_a_pending_alert_whose_condition_stops_resolves_without_firing() -> None:
    engine = AlertEngine([rule(**{"for": "10s", "keep_firing_for": "1m"})])
    engine.evaluate(BAD, T0)
    alert = only(engine)
    changes = engine.evaluate(GOOD, T0 + 5)  # keep_firing_for applies to firing alerts only
    assert moves(changes) == [("pending", "resolved")]
    assert alert.state == "resolved" and alert.resolved_at == T0 + 5
    assert alert.fired_at is None and not alert.fired
    assert engine.alerts == {}


def test_a_firing_alert_resolves_when_the_condition_stops() -> None:
    engine = AlertEngine([rule()])
    engine.evaluate(BAD, T0)
    alert = only(engine)
    changes = engine.evaluate(GOOD, T0 + 5)
    assert moves(changes) == [("firing", "resolved")]
    assert (alert.state, alert.fired_at, alert.resolved_at) == ("resolved", T0, T0 + 5)
    assert engine.alerts == {}
    assert engine.find(alert.id) is None


@pytest.mark.parametrize(("keep", "firings"), [("30s", 1), (0, 6)])
def test_keep_firing_for_turns_flapping_into_one_alert(keep: Any, firings: int) -> None:
    engine = AlertEngine([rule(keep_firing_for=keep)])
    changes: list[Transition] = []
    for step in range(12):  # a minute, evaluated every 5 s: true, false, true, false, ...
        changes += engine.evaluate(BAD if step % 2 == 0 else GOOD, T0 + 5 * step)
    for step in range(12, 24):  # then fine for a minute
        changes += engine.evaluate(GOOD, T0 + 5 * step)
    firing = [c for c in changes if c.after == "firing"]
    resolved = [c for c in changes if c.after == "resolved"]
    assert len(firing) == len(resolved) == firings
    if firings == 1:
        # Last held at T0 + 50 (step 10); resolved once keep_firing_for (30 s) has passed.
        assert resolved[0].at == T0 + 80
        assert resolved[0].alert is firing[0].alert
        assert resolved[0].alert.last_held_at == T0 + 50


def test_keep_firing_for_holds_at_the_boundary_and_resolves_after() -> None:
    engine = AlertEngine([rule(keep_firing_for="10s")])
    engine.evaluate(BAD, T0)
    assert engine.evaluate(GOOD, T0 + 9.5) == []
    assert only(engine).state == "firing"
    assert moves(engine.evaluate(GOOD, T0 + 10)) == [("firing", "resolved")]


def test_the_same_label_set_firing_again_is_a_new_alert() -> None:
    engine = AlertEngine([rule()])
    engine.evaluate(BAD, T0)
    first = only(engine)
    engine.evaluate(GOOD, T0 + 5)
    changes = engine.evaluate(BAD, T0 + 10)
    assert moves(changes) == [(None, "firing")]
    second = changes[0].alert
    assert second.id != first.id
    assert second.fingerprint == first.fingerprint
    assert (second.started_at, second.fired_at) == (T0 + 10, T0 + 10)
    assert first.state == "resolved"


def test_one_alert_per_label_set() -> None:
    engine = AlertEngine([rule(), rule("Broken", condition={"error_rate": {"above": 0.5}})])
    changes = engine.evaluate(errors(api=0.1, web=0.6, db=0.0), T0)
    got = sorted((c.alert.rule, c.alert.service) for c in changes)
    assert got == [("Broken", "web"), ("Errors", "api"), ("Errors", "web")]
    assert len({c.alert.id for c in changes}) == 3
    changes = engine.evaluate(errors(api=0.0, web=0.6, db=0.0), T0 + 5)
    assert [(c.alert.rule, c.alert.service, c.after) for c in changes] == [
        ("Errors", "api", "resolved")
    ]


def test_acknowledge() -> None:
    engine = AlertEngine([rule(), rule("Slow", condition={"error_rate": {"above": 0.01}},
                                       **{"for": "1m"})])  # fmt: skip
    engine.evaluate(BAD, T0)
    firing = next(a for a in engine.alerts.values() if a.rule == "Errors")
    pending = next(a for a in engine.alerts.values() if a.rule == "Slow")
    assert pending.state == "pending"

    acked = engine.acknowledge(firing.id, "alice", "looking", T0 + 1)
    assert acked is firing and firing.state == "acknowledged" and firing.active
    assert (firing.acknowledged_by, firing.acknowledged_at, firing.ack_comment) == (
        "alice",
        T0 + 1,
        "looking",
    )
    assert firing.snapshot("http://x").acknowledged_by == "alice"
    assert firing.snapshot("http://x").status == "firing"
    with pytest.raises(ValueError, match="pending"):
        engine.acknowledge(pending.id, "bob", None, T0 + 1)
    assert pending.state == "pending"
    with pytest.raises(KeyError):
        engine.acknowledge("nope", "bob", None, T0 + 1)

    # Acknowledged stays acknowledged while the condition holds; no new transitions.
    assert moves(engine.evaluate(BAD, T0 + 30)) == []
    changes = engine.evaluate(BAD, T0 + 60)
    assert [(c.alert.rule, c.before, c.after) for c in changes] == [("Slow", "pending", "firing")]
    assert firing.state == "acknowledged" and firing.last_held_at == T0 + 60
    changes = engine.evaluate(GOOD, T0 + 65)
    assert sorted((c.alert.rule, c.before) for c in changes) == [
        ("Errors", "acknowledged"),
        ("Slow", "firing"),
    ]
    with pytest.raises(KeyError):  # resolved alerts are no longer open
        engine.acknowledge(firing.id, "alice", None, T0 + 70)


def test_annotations_fill_placeholders_on_every_evaluation() -> None:
    r = rule(
        severity="critical",
        labels={"team": "shop"},
        annotations={
            "summary": "{{ service }}: error rate {{ value }} above {{threshold}}",
            "owner": "team {{ labels.team }} ({{ labels.alertname }}){{ labels.nothing }}",
            "about": "{{ rule }} is {{ severity }}",
            "plain": "no placeholders",
        },
    )
    engine = AlertEngine([r])
    engine.evaluate(errors(orders=0.073), T0)
    alert = only(engine)
    assert alert.labels == {
        "alertname": "Errors",
        "severity": "critical",
        "team": "shop",
        "service": "orders",
    }
    assert alert.annotations == {
        "summary": "orders: error rate 7.3% above 5.0%",
        "owner": "team shop (Errors)",
        "about": "Errors is critical",
        "plain": "no placeholders",
    }
    engine.evaluate(errors(orders=0.25), T0 + 5)
    assert alert.annotations["summary"] == "orders: error rate 25.0% above 5.0%"
    assert alert.value == 0.25


def test_annotations_of_a_rule_without_threshold_or_service() -> None:
    r = RuleConfig.model_validate(
        {
            "name": "Down",
            "condition": {"exporter": {"failing": True}},
            "annotations": {"summary": "[{{ service }}] {{ labels.exporter }} {{ value }} "
                                       "[{{ threshold }}]"},
        }
    )  # fmt: skip
    from gateway.health.status import ExporterReport

    down = ExporterReport("otlp/a", "failed", "boom", T0, None, 0, 10)
    engine = AlertEngine([r])
    engine.evaluate(Observations(exporters=[down]), T0)
    assert only(engine).annotations == {"summary": "[] otlp/a 1 []"}
    assert only(engine).service is None


def test_disabled_rules_are_not_evaluated() -> None:
    engine = AlertEngine([rule(enabled=False)])
    assert engine.rules == {}
    assert engine.evaluate(BAD, T0) == []


def test_open_alerts_loaded_on_start_continue() -> None:
    engine = AlertEngine([rule()])
    engine.evaluate(BAD, T0)
    saved = only(engine)
    restarted = AlertEngine([rule()], open_alerts=[saved])
    assert restarted.evaluate(BAD, T0 + 5) == []  # same alert, no new transition
    assert only(restarted).id == saved.id
    # Alerts of a rule that no longer exists resolve at the first evaluation.
    orphan = AlertEngine([rule("Other")], open_alerts=[saved])
    assert moves(orphan.evaluate(GOOD, T0 + 5)) == [("firing", "resolved")]


# -- replace_rules ---------------------------------------------------------------------------


def started(r: RuleConfig) -> tuple[AlertEngine, Alert]:
    engine = AlertEngine([r])
    engine.evaluate(BAD, T0)
    return engine, only(engine)


def test_replacing_with_the_same_rule_keeps_the_alert() -> None:
    engine, alert = started(rule())
    assert engine.replace_rules([rule()], T0 + 1) == []
    assert engine.evaluate(BAD, T0 + 5) == []
    assert only(engine) is alert and alert.state == "firing"


@pytest.mark.parametrize(
    "change",
    [
        {"condition": {"error_rate": {"above": 0.08}}},  # a threshold
        {"for": "1m"},
        {"keep_firing_for": "5m"},
        {"annotations": {"summary": "changed"}},
    ],
    ids=["threshold", "for", "keep_firing_for", "annotations"],
)
def test_timing_threshold_or_annotation_changes_keep_the_alert(change: dict[str, Any]) -> None:
    engine, alert = started(rule())
    assert engine.replace_rules([rule(**change)], T0 + 1) == []
    assert engine.evaluate(BAD, T0 + 5) == []  # 10 % is above 8 % too: still the same alert
    assert only(engine).id == alert.id and alert.state == "firing"


@pytest.mark.parametrize(
    "change",
    [
        {"labels": {"team": "shop"}},
        {"severity": "critical"},
        {"condition": {"latency_p99": {"above": 1}}},
        {"service": "orders"},
    ],
    ids=["labels", "severity", "condition-kind", "service"],
)
def test_label_severity_or_kind_changes_resolve_the_alert(change: dict[str, Any]) -> None:
    engine, alert = started(rule())
    ended = engine.replace_rules([rule(**change)], T0 + 1)
    assert moves(ended) == [("firing", "resolved")]
    assert ended[0].alert is alert and alert.resolved_at == T0 + 1
    assert engine.alerts == {}


def test_a_removed_or_disabled_rule_resolves_its_alerts() -> None:
    engine, alert = started(rule())
    engine.evaluate(BAD, T0)
    ended = engine.replace_rules([rule("Other")], T0 + 1)
    assert [(t.alert.id, t.before, t.after) for t in ended] == [(alert.id, "firing", "resolved")]
    engine, alert = started(rule())
    assert moves(engine.replace_rules([rule(enabled=False)], T0 + 1)) == [("firing", "resolved")]


def test_replace_rules_touches_only_the_changed_rule() -> None:
    engine = AlertEngine([rule(), rule("Other", condition={"error_rate": {"above": 0.01}})])
    engine.evaluate(BAD, T0)
    assert len(engine.alerts) == 2
    kept = next(a for a in engine.alerts.values() if a.rule == "Other")
    ended = engine.replace_rules(
        [rule(severity="critical"), rule("Other", condition={"error_rate": {"above": 0.01}})],
        T0 + 1,
    )
    assert [t.alert.rule for t in ended] == ["Errors"]
    assert engine.find(kept.id) is kept
    changes = engine.evaluate(BAD, T0 + 5)  # the changed rule starts a new alert
    assert [(c.alert.rule, c.alert.severity, c.after) for c in changes] == [
        ("Errors", "critical", "firing")
    ]


def test_restored_alerts_are_held_while_the_windows_fill_again() -> None:
    before = AlertEngine([rule()])
    before.evaluate(BAD, T0)
    firing = only(before)
    after = AlertEngine([rule()])  # a new process: the same rules, the saved open alert
    after.restore([firing], hold_until=T0 + 60)
    nothing = Observations()  # no service data yet
    assert after.evaluate(nothing, T0 + 10) == []
    assert only(after).state == "firing" and only(after).id == firing.id
    assert moves(after.evaluate(BAD, T0 + 20)) == []  # holds again: the same alert goes on
    assert moves(after.evaluate(nothing, T0 + 61)) == [("firing", "resolved")]


def test_a_restored_alert_whose_rule_is_gone_resolves_at_once() -> None:
    before = AlertEngine([rule()])
    before.evaluate(BAD, T0)
    after = AlertEngine([rule("Other")])
    after.restore([only(before)], hold_until=T0 + 60)
    assert moves(after.evaluate(Observations(), T0 + 1)) == [("firing", "resolved")]
