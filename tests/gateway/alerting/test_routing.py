"""Routing: Alertmanager's tree, matchers and inheritance."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.alerting.config import RouteConfig
from gateway.alerting.dispatch import group_key
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
