"""The route tree, compiled: which routes (and so receivers and grouping) an alert takes.

Alertmanager's semantics: a node matches when its matchers do; its children are tried in
order and the first that matches takes the alert unless it has ``continue: true`` (then the
next ones are tried too); a node none of whose children match takes the alert itself.
Children inherit ``receiver``, ``group_by``, the intervals and ``escalation`` they leave out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.alerting.config import EscalationStep, RouteConfig
from gateway.alerting.matchers import Matcher, matches_all

DEFAULT_GROUP_BY = ("alertname", "service")
DEFAULT_GROUP_WAIT = 10.0
DEFAULT_GROUP_INTERVAL = 60.0
DEFAULT_REPEAT_INTERVAL = 4 * 3600.0
ALL_LABELS = "..."


@dataclass(frozen=True, slots=True)
class Route:
    """One compiled node; ``id`` is its position (``0``, ``0.1``, ...)."""

    id: str
    receiver: str
    matchers: tuple[Matcher, ...]
    group_by: tuple[str, ...]
    group_wait: float
    group_interval: float
    repeat_interval: float
    continue_: bool
    escalation: tuple[EscalationStep, ...]
    children: tuple[Route, ...] = field(default=())

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """The labels an alert is grouped by on this route (all of them for ``...``)."""
        if ALL_LABELS in self.group_by:
            return dict(labels)
        return {k: labels[k] for k in self.group_by if k in labels}

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        """The routes that take an alert with ``labels`` (empty when this node does not
        match)."""
        if not matches_all(self.matchers, labels):
            return []
        taken: list[Route] = []
        for child in self.children:
            found = child.match(labels)
            taken += found
            if found and not child.continue_:
                break
        return taken or [self]

    def walk(self) -> list[Route]:
        """This node and every node below it."""
        return [self, *(node for child in self.children for node in child.walk())]


_ROOT = Route(
    id="",
    receiver="",
    matchers=(),
    group_by=DEFAULT_GROUP_BY,
    group_wait=DEFAULT_GROUP_WAIT,
    group_interval=DEFAULT_GROUP_INTERVAL,
    repeat_interval=DEFAULT_REPEAT_INTERVAL,
    continue_=False,
    escalation=(),
)


def compile_route(config: RouteConfig, parent: Route | None = None, at: str = "0") -> Route:
    """The tree for ``config``; the root must name a receiver (checked by the config)."""
    up = parent or _ROOT
    children_parent = Route(
        id=at,
        receiver=config.receiver or up.receiver,
        matchers=tuple(config.parsed_matchers()),
        group_by=up.group_by if config.group_by is None else tuple(config.group_by),
        group_wait=up.group_wait if config.group_wait is None else config.group_wait,
        group_interval=up.group_interval
        if config.group_interval is None
        else config.group_interval,
        repeat_interval=up.repeat_interval
        if config.repeat_interval is None
        else config.repeat_interval,
        continue_=config.continue_,
        escalation=up.escalation if config.escalation is None else tuple(config.escalation),
    )
    children = tuple(
        compile_route(child, children_parent, f"{at}.{i}") for i, child in enumerate(config.routes)
    )
    return dataclasses.replace(children_parent, children=children)
