"""The dispatcher: grouping, group_wait / group_interval / repeat_interval,
acknowledgements, silences and escalation."""

from __future__ import annotations

from tests.gateway.alerting.dispatch_world import ESCALATING, SIMPLE, T0, URL, World, told


def test_group_wait_delays_the_first_notification_and_collects_the_group() -> None:
    world = World(SIMPLE)
    world.fire("a1", T0, service="api")
    assert world.tick(T0) == []
    world.fire("a2", T0 + 5, service="web")
    assert world.ticks(T0 + 5, T0 + 10) == []
    out = world.tick(T0 + 10)
    assert told(out) == [("team", 0, [("a1", "firing"), ("a2", "firing")])]
    n = out[0].notification
    assert out[0].delivery == "grouped"
    assert n.group_key == '0:{alertname="Errors"}' and n.group_labels == {"alertname": "Errors"}
    assert n.status == "firing" and n.external_url == URL
    assert n.alerts[0].generator_url == f"{URL}/alerts/a1"
    assert n.alerts[0].starts_at == T0 and n.alerts[0].ends_at is None
    assert n.common_labels == {"alertname": "Errors", "severity": "critical"}
    assert world.ticks(T0 + 11, T0 + 600) == []  # nothing changed


def test_grouping_labels_make_separate_groups() -> None:
    world = World({**SIMPLE, "group_by": ["alertname", "service"]})
    world.fire("a1", T0, service="api")
    world.fire("a2", T0, service="web")
    world.fire("a3", T0, service="web")
    assert world.tick(T0) == []  # the group starts: group_wait from here
    out = world.tick(T0 + 10)
    assert sorted((o.notification.group_key, len(o.notification.alerts)) for o in out) == [
        ('0:{alertname="Errors",service="api"}', 1),
        ('0:{alertname="Errors",service="web"}', 2),
    ]
    assert len(world.dispatcher.groups) == 2


def test_group_interval_batches_changes() -> None:
    world = World(SIMPLE)
    world.fire("a1", T0)
    assert world.tick(T0) == []  # the group starts: group_wait from here
    world.tick(T0 + 10)  # first notification
    world.fire("a2", T0 + 20)
    world.fire("a3", T0 + 40)
    assert world.ticks(T0 + 20, T0 + 70) == []
    assert told(world.tick(T0 + 70)) == [("team", 0, [("a1", "firing"), ("a2", "firing"),
                                                       ("a3", "firing")])]  # fmt: skip
    world.fire("a4", T0 + 75)
    world.resolve("a1", T0 + 80)
    assert world.ticks(T0 + 75, T0 + 130) == []
    out = world.tick(T0 + 130)
    assert told(out) == [
        ("team", 0, [("a2", "firing"), ("a3", "firing"), ("a4", "firing"), ("a1", "resolved")])
    ]
    assert out[0].notification.alerts[-1].ends_at == T0 + 80
    assert world.dispatcher.groups['0:{alertname="Errors"}'].members == {"a2", "a3", "a4"}


def test_repeat_interval_repeats_until_acknowledged() -> None:
    world = World(SIMPLE)
    world.fire("a1", T0)
    world.fire("a2", T0)
    assert world.tick(T0) == []  # the group starts: group_wait from here
    world.tick(T0 + 10)
    sent = world.ticks(T0 + 20, T0 + 7300, step=10.0)
    assert [at - T0 for at, _ in sent] == [3610.0, 7210.0]  # every hour after the first one
    assert all(told([o]) == [("team", 0, [("a1", "firing"), ("a2", "firing")])] for _, o in sent)
    world.ack("a1", T0 + 7300)
    # One of them still waits for someone: the group still repeats (with both).
    sent = world.ticks(T0 + 7300, T0 + 10900, step=10.0)
    assert [at - T0 for at, _ in sent] == [10810.0]
    assert told([sent[0][1]])[0][2] == [("a1", "firing"), ("a2", "firing")]
    assert sent[0][1].notification.alerts[0].acknowledged_by == "alice"
    world.ack("a2", T0 + 10900)
    assert world.ticks(T0 + 10900, T0 + 30000, step=10.0) == []  # all acknowledged: no repeats
    world.resolve("a1", T0 + 30000)  # a resolution is still told
    assert told(world.tick(T0 + 30000)) == [("team", 0, [("a2", "firing"), ("a1", "resolved")])]


def test_resolved_is_told_only_for_alerts_notified_firing() -> None:
    world = World(SIMPLE)
    world.fire("a1", T0)
    assert world.tick(T0) == []  # the group starts: group_wait from here
    world.tick(T0 + 10)
    world.fire("a2", T0 + 20)
    world.resolve("a2", T0 + 30)  # resolved before the group told anyone about it
    world.resolve("a1", T0 + 40)
    assert world.ticks(T0 + 20, T0 + 70) == []
    out = world.tick(T0 + 70)
    assert told(out) == [("team", 0, [("a1", "resolved")])]
    assert out[0].notification.status == "resolved"
    assert world.dispatcher.groups == {}  # empty: gone
    assert world.saved == {}  # and removed from the store
    assert world.ticks(T0 + 71, T0 + 4000, step=10.0) == []


def test_an_alert_resolved_during_group_wait_is_never_told() -> None:
    world = World(SIMPLE)
    world.fire("a1", T0)
    world.tick(T0)
    world.resolve("a1", T0 + 5)
    assert world.ticks(T0 + 5, T0 + 200) == []
    assert world.dispatcher.groups == {}


def test_silenced_alerts_are_not_notified_and_leave_their_group() -> None:
    world = World(SIMPLE)
    world.fire("a1", T0).silenced_by = ["s1"]
    world.fire("a2", T0)
    assert world.tick(T0) == []  # the group starts: group_wait from here
    out = world.tick(T0 + 10)
    assert told(out) == [("team", 0, [("a2", "firing")])]
    group = world.dispatcher.groups['0:{alertname="Errors"}']
    assert group.members == {"a2"}

    world.alerts["a2"].silenced_by = ["s2"]  # silenced after being told: leaves the group
    assert world.tick(T0 + 20) == []
    assert world.dispatcher.groups == {}
    world.resolve("a2", T0 + 100)  # no resolved notice about a silenced alert
    assert world.ticks(T0 + 100, T0 + 4000, step=10.0) == []

    world.alerts["a1"].silenced_by = []  # the silence ends: a new group, group_wait again
    assert world.tick(T0 + 4000) == []
    assert told(world.tick(T0 + 4010)) == [("team", 0, [("a1", "firing")])]


def test_a_silenced_member_drops_out_of_the_next_notifications() -> None:
    world = World(SIMPLE)
    world.fire("a1", T0)
    world.fire("a2", T0)
    assert world.tick(T0) == []  # the group starts: group_wait from here
    world.tick(T0 + 10)
    world.alerts["a1"].silenced_by = ["s1"]
    assert world.ticks(T0 + 11, T0 + 3600, step=10.0) == []  # leaving is not a change to tell
    sent = world.ticks(T0 + 3600, T0 + 3700, step=10.0)
    assert [told([o]) for _, o in sent] == [[("team", 0, [("a2", "firing")])]]


def test_pending_alerts_are_not_notified() -> None:
    world = World(SIMPLE)
    world.fire("a1", T0).state = "pending"
    assert world.ticks(T0, T0 + 100) == []
    assert world.dispatcher.groups == {}


def test_escalation_steps_notify_once_after_their_delay_and_on_resolve() -> None:
    world = World(ESCALATING)
    world.fire("a1", T0)
    sent = world.ticks(T0, T0 + 3600 + 5, step=5.0)
    assert [(at - T0, *told([o])[0]) for at, o in sent] == [
        (10.0, "team", 0, [("a1", "firing")]),
        (900.0, "oncall", 1, [("a1", "firing")]),
        (3600.0, "boss", 2, [("a1", "firing")]),
        (3600.0, "oncall", 2, [("a1", "firing")]),
    ]
    sent = world.ticks(T0 + 3605, T0 + 5000, step=5.0)  # the group's own repeat only
    assert [(at - T0, *told([o])[0]) for at, o in sent] == [(3610.0, "team", 0, [("a1", "firing")])]
    world.resolve("a1", T0 + 5000)
    out = world.tick(T0 + 5000)
    assert sorted(told(out)) == [
        ("boss", 2, [("a1", "resolved")]),
        ("oncall", 1, [("a1", "resolved")]),
        ("oncall", 2, [("a1", "resolved")]),
        ("team", 0, [("a1", "resolved")]),
    ]
    assert world.dispatcher.groups == {}


def test_escalation_tells_a_resolution_once_even_when_the_group_waits() -> None:
    world = World(ESCALATING)
    world.fire("a1", T0)
    world.fire("a2", T0)
    world.ticks(T0, T0 + 901, step=1.0)  # told at +10, escalated at +900
    world.resolve("a1", T0 + 930)  # the group told the team at +900? no: +10; interval 1m
    sent = world.ticks(T0 + 930, T0 + 1000, step=1.0)
    assert [(at - T0, *told([o])[0]) for at, o in sent] == [
        (930.0, "oncall", 1, [("a1", "resolved")]),
        (930.0, "team", 0, [("a2", "firing"), ("a1", "resolved")]),
    ]


def test_no_escalation_for_alerts_acknowledged_in_time() -> None:
    world = World(ESCALATING)
    world.fire("a1", T0)
    world.fire("a2", T0, service="other")
    assert world.tick(T0) == []  # the group starts: group_wait from here
    world.tick(T0 + 10)
    world.ack("a1", T0 + 600)
    sent = world.ticks(T0 + 11, T0 + 1000, step=1.0)
    assert [(at - T0, *told([o])[0]) for at, o in sent] == [
        (900.0, "oncall", 1, [("a2", "firing")])
    ]
    world.resolve("a1", T0 + 1000)  # never escalated: escalation receivers hear nothing
    out = world.tick(T0 + 1000)
    assert told(out) == [("team", 0, [("a2", "firing"), ("a1", "resolved")])]


def test_receivers_without_grouped_integrations_get_no_grouped_notifications() -> None:
    world = World(ESCALATING, grouped=["team"])  # oncall and boss: say, Alertmanager only
    world.fire("a1", T0)
    sent = world.ticks(T0, T0 + 3700, step=10.0)
    assert {o.notification.receiver for _, o in sent} == {"team"}
