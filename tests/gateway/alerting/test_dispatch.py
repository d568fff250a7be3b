"""Routing (Alertmanager's tree, matchers, inheritance) and the dispatcher: grouping,
group_wait / group_interval / repeat_interval, acknowledgements, silences, escalation,
forwarding to Alertmanager, and group state that survives a restart."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from gateway.alerting.config import RouteConfig
from gateway.alerting.dispatch import Dispatcher, Group, Outgoing, group_key
from gateway.alerting.engine import Alert
from gateway.alerting.matchers import Matcher, parse_matcher
from gateway.alerting.routing import Route, compile_route

T0 = 1_800_000_000.0
URL = "http://gw.example:8888"


def route(**config: Any) -> Route:
    return compile_route(RouteConfig.model_validate(config))


# -- matchers and routes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels", "hit"),
    [
        ('service="db"', {"service": "db"}, True),
        ('service="db"', {"service": "db2"}, False),
        ("service=db", {"service": "db"}, True),  # quotes are optional
        ('service!="db"', {"service": "web"}, True),
        ('service!="db"', {"service": "db"}, False),
        ('service=~"web|api"', {"service": "api"}, True),
        ('service=~"web|api"', {"service": "api2"}, False),  # anchored
        ('service=~"web.*"', {"service": "webshop"}, True),
        ('service!~"web.*"', {"service": "webshop"}, False),
        ('service!~"web.*"', {"service": "db"}, True),
        # A missing label matches as the empty string.
        ('team=""', {}, True),
        ('team!=""', {}, False),
        ('team="x"', {}, False),
        ('team!="x"', {}, True),
        ('team=~".*"', {}, True),
        ('team=~".+"', {}, False),
        ('team!~"x|y"', {}, True),
        (r'msg="say \"hi\""', {"msg": 'say "hi"'}, True),
    ],
)
def test_matchers(text: str, labels: dict[str, str], hit: bool) -> None:
    assert parse_matcher(text).matches(labels) is hit


def test_matcher_text_round_trips() -> None:
    for text in ('a="1"', 'a!="1"', 'a=~"1|2"', 'a!~"x.*"', r'a="q\"uote"'):
        assert str(parse_matcher(text)) == text
    assert parse_matcher("a =~ b").as_json() == {
        "name": "a",
        "value": "b",
        "isRegex": True,
        "isEqual": True,
    }


@pytest.mark.parametrize("text", ["nolabel", '1a="x"', 'a=~"("', "=x"])
def test_bad_matchers_are_errors(text: str) -> None:
    with pytest.raises(ValueError):
        parse_matcher(text)


TREE = route(
    receiver="default",
    routes=[
        {"receiver": "db", "matchers": ['service="db"']},
        {"receiver": "web", "matchers": ['service=~"web|api"'], "continue": True},
        {"receiver": "frontend", "matchers": ['team!="backend"', 'service=~"web.*"']},
        {"receiver": "quiet", "matchers": ['severity!~"crit.*"']},
        {"receiver": "never", "matchers": ['severity!~"crit.*"']},  # after quiet: not reached
    ],
)


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ({"service": "db", "severity": "warning"}, ["db"]),  # first match stops
        ({"service": "web", "severity": "critical", "team": "frontend"}, ["web", "frontend"]),
        # continue: web takes it and the next siblings are tried; team missing is "" here.
        ({"service": "web", "severity": "critical"}, ["web", "frontend"]),
        ({"service": "web", "severity": "critical", "team": "backend"}, ["web"]),
        ({"service": "api", "severity": "warning"}, ["web", "quiet"]),
        ({"service": "other", "severity": "critical"}, ["default"]),  # no child: the node
        ({"service": "other", "severity": "info"}, ["quiet"]),
        ({}, ["quiet"]),  # severity missing: "" does not match crit.*
    ],
)
def test_route_matching(labels: dict[str, str], receivers: list[str]) -> None:
    assert [r.receiver for r in TREE.match(labels)] == receivers


def test_a_node_that_does_not_match_takes_nothing() -> None:
    tree = route(
        receiver="default",
        routes=[
            {"matchers": ['team="db"'], "receiver": "db",
             "routes": [{"matchers": ['severity="critical"'], "receiver": "dba"}]},
        ],
    )  # fmt: skip
    assert [r.id for r in tree.match({"team": "db", "severity": "critical"})] == ["0.0.0"]
    assert [r.id for r in tree.match({"team": "db", "severity": "info"})] == ["0.0"]
    assert [r.id for r in tree.match({"team": "web"})] == ["0"]
    child = tree.children[0]
    assert child.match({"team": "web"}) == []


def test_children_inherit_what_they_leave_out() -> None:
    tree = route(
        receiver="root",
        group_by=["alertname", "service"],
        group_wait="30s",
        group_interval="5m",
        repeat_interval="4h",
        escalation=[{"after": "15m", "receivers": ["oncall"]}],
        routes=[
            {
                "matchers": ['team="db"'],
                "group_by": ["cluster"],
                "routes": [
                    {"matchers": ['severity="critical"'], "receiver": "dba",
                     "repeat_interval": "1h", "group_wait": 0},
                ],
            },
            {"matchers": ['team="web"'], "receiver": "web", "escalation": [], "group_by": ["..."]},
        ],
    )  # fmt: skip
    db, web = tree.children
    (dba,) = db.children
    assert [n.id for n in tree.walk()] == ["0", "0.0", "0.0.0", "0.1"]
    assert (db.receiver, db.group_by, db.group_wait, db.group_interval, db.repeat_interval) == (
        "root",
        ("cluster",),
        30.0,
        300.0,
        14400.0,
    )
    assert db.escalation == tree.escalation and db.escalation[0].receivers == ["oncall"]
    assert db.matchers == (Matcher("team", "db"),)  # matchers are not inherited
    assert (dba.receiver, dba.group_by, dba.group_wait, dba.repeat_interval) == (
        "dba",
        ("cluster",),  # from its parent, not the root
        0.0,
        3600.0,
    )
    assert dba.group_interval == 300.0 and dba.escalation == tree.escalation
    assert dba.matchers == (Matcher("severity", "critical"),)
    assert web.escalation == () and web.group_by == ("...",)
    labels = {"alertname": "A", "team": "web", "x": "1"}
    assert web.group_labels(labels) == labels
    assert db.group_labels(labels) == {}  # cluster missing: left out


def test_root_defaults() -> None:
    root = route(receiver="r")
    assert (root.id, root.group_by, root.group_wait, root.group_interval) == (
        "0",
        ("alertname", "service"),
        10.0,
        60.0,
    )
    assert root.repeat_interval == 4 * 3600.0 and root.escalation == ()
    assert root.group_labels({"alertname": "A", "severity": "x"}) == {"alertname": "A"}
    assert group_key(root, {"service": "b", "alertname": "A"}) == '0:{alertname="A",service="b"}'


# -- the dispatcher --------------------------------------------------------------------------


class World:
    """Alerts by hand and a dispatcher ticking over them; after each tick the groups it
    marked changed or removed are saved (as JSON, like the alerting service does)."""

    def __init__(
        self,
        config: dict[str, Any],
        *,
        grouped: Iterable[str] = ("team", "oncall", "boss"),
        forwarding: Iterable[str] = (),
        resend_interval: float = 60.0,
        groups: Iterable[Group] = (),
    ) -> None:
        self.config = config
        self.options: dict[str, Any] = {
            "grouped": grouped, "forwarding": forwarding, "resend_interval": resend_interval
        }  # fmt: skip
        self.root = route(**config)
        self.dispatcher = Dispatcher(
            self.root,
            external_url=URL + "/",
            resend_interval=resend_interval,
            forwarding=forwarding,
            grouped=grouped,
            groups=groups,
        )
        self.alerts: dict[str, Alert] = {}
        self._resolved: list[Alert] = []
        self.saved: dict[str, str] = {}  # group key -> state

    def fire(self, alert_id: str, at: float, **labels: str) -> Alert:
        alert = Alert(
            id=alert_id,
            rule=labels.get("alertname", "Errors"),
            fingerprint=alert_id,
            labels={"alertname": "Errors", "severity": "critical", **labels},
            annotations={"summary": f"{alert_id} is bad"},
            severity=labels.get("severity", "critical"),
            state="firing",
            value=1.0,
            started_at=at,
            last_held_at=at,
            fired_at=at,
        )
        self.alerts[alert_id] = alert
        return alert

    def resolve(self, alert_id: str, at: float) -> None:
        alert = self.alerts[alert_id]
        alert.state, alert.resolved_at = "resolved", at
        self._resolved.append(alert)

    def ack(self, alert_id: str, at: float) -> None:
        alert = self.alerts[alert_id]
        alert.state, alert.acknowledged_by, alert.acknowledged_at = "acknowledged", "alice", at

    def tick(self, now: float) -> list[Outgoing]:
        opened = [a for a in self.alerts.values() if a.state != "resolved"]
        resolved, self._resolved = self._resolved, []
        out = self.dispatcher.tick(now, opened, resolved, self.alerts.get)
        dispatcher = self.dispatcher
        for key in dispatcher.changed:
            if key in dispatcher.groups:
                self.saved[key] = dispatcher.groups[key].to_json()
        for key in dispatcher.removed:
            self.saved.pop(key, None)
        dispatcher.changed.clear()
        dispatcher.removed.clear()
        return out

    def restarted(self) -> World:
        """A new dispatcher with the saved groups, over the same alerts (from the store)."""
        groups = [Group.from_json(text) for text in self.saved.values()]
        again = World(self.config, groups=groups, **self.options)
        again.alerts, again.saved = self.alerts, dict(self.saved)
        return again

    def ticks(self, start: float, stop: float, step: float = 1.0) -> list[tuple[float, Outgoing]]:
        """Tick every ``step`` from ``start`` to before ``stop``: what went out, when."""
        sent = []
        now = start
        while now < stop:
            sent += [(now, o) for o in self.tick(now)]
            now += step
        return sent


def told(out: Iterable[Outgoing]) -> list[tuple[str, int, list[tuple[str, str]]]]:
    """(receiver, escalation, [(alert id, status), ...]) per notification."""
    return [
        (o.notification.receiver, o.notification.escalation,
         [(a.id, a.status) for a in o.notification.alerts])
        for o in out
    ]  # fmt: skip


SIMPLE = {
    "receiver": "team",
    "group_by": ["alertname"],
    "group_wait": "10s",
    "group_interval": "1m",
    "repeat_interval": "1h",
}


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


ESCALATING = {
    **SIMPLE,
    "escalation": [
        {"after": "15m", "receivers": ["oncall"]},
        {"after": "1h", "receivers": ["boss", "oncall"]},
    ],
}


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


# -- forwarding to Alertmanager --------------------------------------------------------------

FORWARDING = {"receiver": "team", "routes": [{"matchers": ['team="db"'], "receiver": "am"}]}


def test_alertmanager_receivers_get_every_alert_unbatched() -> None:
    world = World(FORWARDING, grouped=["team"], forwarding=["am"], resend_interval=60.0)
    world.fire("a1", T0, team="db")
    world.fire("other", T0, team="web")  # routed to team only
    out = world.tick(T0)  # at once: no group_wait
    assert told(out) == [("am", 0, [("a1", "firing")])]
    assert out[0].delivery == "forward" and out[0].notification.group_key == "forward"
    sent = world.ticks(T0 + 1, T0 + 60)  # the team's group, after group_wait
    assert [(at - T0, o.delivery, *told([o])[0]) for at, o in sent] == [
        (10.0, "grouped", "team", 0, [("other", "firing")])
    ]


def test_alertmanager_forwarding_resends_and_posts_the_resolution() -> None:
    world = World(FORWARDING, grouped=["team"], forwarding=["am"], resend_interval=60.0)
    world.fire("a1", T0, team="db")
    assert len(world.tick(T0)) == 1
    forwarded = [
        at - T0 for at, o in world.ticks(T0 + 1, T0 + 130, step=1.0) if o.delivery == "forward"
    ]
    assert forwarded == [60.0, 120.0]  # every resend_interval, not before
    world.fire("a2", T0 + 125, team="db")
    out = world.tick(T0 + 125)
    assert told(out) == [("am", 0, [("a2", "firing")])]  # a1 was posted at +120
    world.resolve("a1", T0 + 130)
    out = world.tick(T0 + 130)
    assert told(out) == [("am", 0, [("a1", "resolved")])]
    assert out[0].notification.alerts[0].ends_at == T0 + 130
    world.resolve("a2", T0 + 131)
    assert told(world.tick(T0 + 131)) == [("am", 0, [("a2", "resolved")])]
    assert world.ticks(T0 + 132, T0 + 400, step=1.0) == []
    # Acknowledged alerts still fire: still forwarded.
    world.fire("a3", T0 + 400, team="db")
    world.tick(T0 + 400)
    world.ack("a3", T0 + 401)
    assert told(world.tick(T0 + 460)) == [("am", 0, [("a3", "firing")])]


def test_a_receiver_with_both_kinds_gets_both() -> None:
    world = World({"receiver": "team"}, grouped=["team"], forwarding=["team"])
    world.fire("a1", T0)
    assert [(o.delivery, o.notification.receiver) for o in world.tick(T0)] == [("forward", "team")]
    assert [(o.delivery, o.notification.receiver) for o in world.tick(T0 + 10)] == [
        ("grouped", "team")
    ]


def test_silenced_or_never_fired_alerts_are_not_forwarded() -> None:
    world = World({"receiver": "am"}, grouped=[], forwarding=["am"])
    world.fire("a1", T0).silenced_by = ["s"]
    world.fire("a2", T0).state = "pending"
    assert world.tick(T0) == []
    world.alerts["a2"].fired_at = None
    world.resolve("a2", T0 + 5)
    assert world.tick(T0 + 5) == []


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
