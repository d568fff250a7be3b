"""Group state that survives a restart, and the edges of the dispatcher."""

from __future__ import annotations

from gateway.alerting.dispatch import Dispatcher, Group
from tests.gateway.alerting.dispatch_world import ESCALATING, SIMPLE, T0, URL, World, told

# -- state across a restart ------------------------------------------------------------------


def test_group_json_round_trip() -> None:
    group = Group(
        key='0.1:{alertname="A",service="b"}',
        route="0.1",
        labels={"alertname": "A", "service": "b"},
        created_at=T0,
        members={"x", "a"},
        notified_firing={"a"},
        last_notified_at=T0 + 10,
        last_flush_at=T0 + 10,
        escalated={"a": 2},
    )
    text = group.to_json()
    assert Group.from_json(text) == group
    assert Group.from_json(Group(key="k", route="0", labels={}, created_at=T0).to_json()) == (
        Group(key="k", route="0", labels={}, created_at=T0)
    )


def test_a_restarted_dispatcher_does_not_notify_again_before_the_interval() -> None:
    world = World(ESCALATING)
    world.fire("a1", T0)
    world.fire("a2", T0)
    world.ticks(T0, T0 + 901, step=1.0)  # told at +10, escalated at +900
    assert len(world.saved) == 1
    (saved,) = [Group.from_json(text) for text in world.saved.values()]
    assert saved == next(iter(world.dispatcher.groups.values()))

    again = world.restarted()
    sent = again.ticks(T0 + 901, T0 + 3620, step=1.0)
    assert [(at - T0, *told([o])[0]) for at, o in sent] == [
        (3600.0, "boss", 2, [("a1", "firing"), ("a2", "firing")]),
        (3600.0, "oncall", 2, [("a1", "firing"), ("a2", "firing")]),
        (3610.0, "team", 0, [("a1", "firing"), ("a2", "firing")]),  # the repeat, on time
    ]
    again.resolve("a1", T0 + 3620)
    sent = again.ticks(T0 + 3620, T0 + 3700, step=1.0)
    assert sorted((at - T0, *told([o])[0]) for at, o in sent) == [
        (3620.0, "boss", 2, [("a1", "resolved")]),
        (3620.0, "oncall", 1, [("a1", "resolved")]),
        (3620.0, "oncall", 2, [("a1", "resolved")]),
        (3670.0, "team", 0, [("a2", "firing"), ("a1", "resolved")]),  # at the group interval
    ]


def test_a_restart_does_not_repeat_an_escalated_resolution() -> None:
    world = World(ESCALATING)
    world.fire("a1", T0)
    world.fire("a2", T0)
    world.ticks(T0, T0 + 3611, step=1.0)  # escalated twice; the team's repeat at +3610
    world.resolve("a1", T0 + 3620)
    assert len(world.tick(T0 + 3620)) == 3  # the escalation receivers hear it at once
    again = world.restarted()  # before the team's resolved notice (at +3670)
    sent = again.ticks(T0 + 3621, T0 + 3700, step=1.0)
    assert [(at - T0, *told([o])[0]) for at, o in sent] == [
        (3670.0, "team", 0, [("a2", "firing"), ("a1", "resolved")])
    ]


def test_a_restart_during_group_wait_keeps_the_wait() -> None:
    world = World(SIMPLE)
    world.fire("a1", T0)
    world.tick(T0)
    again = world.restarted()
    assert again.ticks(T0 + 1, T0 + 10) == []
    assert told(again.tick(T0 + 10)) == [("team", 0, [("a1", "firing")])]


def test_saved_groups_of_routes_that_are_gone_are_dropped() -> None:
    stale = Group(key="0.5:{}", route="0.5", labels={}, created_at=T0, members={"a1"})
    kept = Group(key="0:{}", route="0", labels={}, created_at=T0, members={"a1"})
    world = World(SIMPLE, groups=[stale, kept])
    assert list(world.dispatcher.groups) == ["0:{}"]


def test_without_a_route_nothing_is_sent() -> None:
    dispatcher = Dispatcher(None, external_url=URL, resend_interval=60.0, grouped=["team"])
    world = World(SIMPLE)
    world.fire("a1", T0)
    assert dispatcher.tick(T0 + 100, list(world.alerts.values()), [], world.alerts.get) == []


def test_open_alerts_may_be_any_iterable() -> None:
    world = World(SIMPLE)
    world.fire("a1", T0)
    world.fire("a2", T0)
    world.tick(T0)
    world.tick(T0 + 10)
    world.alerts["a1"].silenced_by = ["s1"]
    opened = (a for a in world.alerts.values())  # read once only
    world.dispatcher.tick(T0 + 20, opened, [], world.alerts.get)
    assert world.dispatcher.groups['0:{alertname="Errors"}'].members == {"a2"}
