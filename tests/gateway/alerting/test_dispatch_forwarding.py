"""Forwarding to Alertmanager: every alert unbatched, re-sent while firing, resolved."""

from __future__ import annotations

from tests.gateway.alerting.dispatch_world import T0, World, told

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
