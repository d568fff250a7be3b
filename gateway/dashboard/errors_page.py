"""The Errors pages: ``/ui/errors`` (the groups, with filters, a sparkline of occurrences per
minute and Resolve/Ignore/Unresolve buttons) and ``/ui/errors/{group_id}`` (one group: counts,
where it happened, its stack trace with the application's frames marked, its samples linked
to their trace and logs).

They read what the JSON API serves (:mod:`gateway.api.errors`); the buttons call that API.
The sparkline shows the requests each group hit per minute over the last half hour, from the
per-minute counts the tracker keeps in memory (``ErrorGroup.per_minute``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from markupsafe import Markup
from starlette.responses import HTMLResponse

from gateway.api.errors_models import group_detail, group_view
from gateway.dashboard.charts import sparkline
from gateway.dashboard.render import identity_of, page, page_offset
from gateway.dashboard.sources import DashboardSources
from gateway.error_tracking.groups import STATUSES, ErrorGroup
from gateway.error_tracking.stacktrace import Frame, parse_stacktrace
from gateway.security.auth import ANONYMOUS

GROUPS_PAGE = 50
MINUTES = 30  # the sparkline's span
Sort = Literal["last_seen", "count", "first_seen"]
SORTS: dict[Sort, str] = {"last_seen": "Last seen", "count": "Count", "first_seen": "First seen"}
#: The status changes offered for a group in each status: (API action, button text).
ACTIONS = {
    "unresolved": (("resolve", "Resolve"), ("ignore", "Ignore")),
    "resolved": (("unresolve", "Unresolve"), ("ignore", "Ignore")),
    "ignored": (("unresolve", "Unresolve"), ("resolve", "Resolve")),
}
DONE = {"resolve": "Resolved", "ignore": "Ignored", "unresolve": "Marked unresolved"}


@dataclass(frozen=True, slots=True)
class GroupFilters:
    """The groups form's values ('' for any) and the page's offset."""

    service: str = ""
    status: str = ""
    sort: Sort = "last_seen"
    offset: int = 0

    def link(self, offset: int) -> str:
        """The list's URL with these filters at ``offset``."""
        params: dict[str, Any] = {"service": self.service, "status": self.status,
                                  "sort": "" if self.sort == "last_seen" else self.sort,
                                  "offset": offset}  # fmt: skip
        kept = {k: v for k, v in params.items() if v}
        return "/ui/errors" + (f"?{urlencode(kept)}" if kept else "")


def group_filters(params: Mapping[str, str]) -> GroupFilters:
    """The filters of a query string (unknown values are left out)."""
    status = params.get("status", "")
    wanted = params.get("sort", "")
    sort: Sort = "last_seen"
    for key in SORTS:
        if key == wanted:
            sort = key
    offset = page_offset(params)
    return GroupFilters(
        service=params.get("service", "").strip()[:200],
        status=status if status in STATUSES else "",
        sort=sort,
        offset=offset,
    )


def select_groups(groups: Sequence[ErrorGroup], filters: GroupFilters) -> list[ErrorGroup]:
    """The groups matching the filters, in the chosen order (as ``GET /errors`` sorts)."""
    found = [
        g for g in groups
        if (not filters.service or filters.service in g.services)
        and (not filters.status or g.status == filters.status)
    ]  # fmt: skip
    if filters.sort == "count":
        found.sort(key=lambda g: (-g.count, -g.last_seen, g.id))
    else:
        found.sort(key=lambda g: (-getattr(g, filters.sort), g.id))
    return found


def action_body(request: Request) -> str:
    """The JSON body of a status button: who changes it."""
    who = identity_of(request)
    return json.dumps({"by": "dashboard" if who is ANONYMOUS else who.name})


@dataclass(frozen=True, slots=True)
class StackView:
    """A stack trace as text and as frames (innermost first)."""

    text: str
    frames: list[Frame]
    in_app: int


def stack_view(text: str, language: str) -> StackView:
    """The frames of a stack trace, each marked in-app or not."""
    frames = list(parse_stacktrace(text, language).frames)
    return StackView(text, frames, sum(1 for f in frames if f.in_app))


def _sparkline(group: ErrorGroup, now: float) -> Markup:
    values = [float(v) for v in group.per_minute(now, MINUTES)]
    return sparkline(values, unit="/min", label=f"{group.type}: occurrences per minute")


def add_routes(router: APIRouter, sources: DashboardSources) -> None:
    """``GET /ui/errors`` and ``GET /ui/errors/{group_id}``."""

    @router.get("/ui/errors")
    async def errors(request: Request) -> HTMLResponse:
        common: dict[str, Any] = {"title": "Errors", "section": "errors",
                                  "refresh": sources.refresh}  # fmt: skip
        service = sources.errors
        if service is None:
            return page(request, "errors.html", **common, enabled=False)
        tracker = service.tracker
        every = list(tracker.groups.values())
        now = tracker.clock()
        filters = group_filters(request.query_params)
        found = select_groups(every, filters)
        shown = [group_view(g) for g in found[filters.offset : filters.offset + GROUPS_PAGE]]
        end = filters.offset + len(shown)
        return page(
            request,
            "errors.html",
            **common,
            enabled=True,
            groups=shown,
            sparklines={
                g.id: _sparkline(tracker.groups[g.id], now) for g in shown if g.id in tracker.groups
            },
            minutes=MINUTES,
            total=len(found),
            tracked=len(every),
            untracked=tracker.untracked,
            first=filters.offset + 1 if shown else 0,
            last=end,
            newer=filters.link(max(0, filters.offset - GROUPS_PAGE)) if filters.offset else None,
            older=filters.link(end) if end < len(found) else None,
            filters=filters,
            services=sorted({s for g in every for s in g.services}),
            statuses=STATUSES,
            sorts=SORTS,
            actions=ACTIONS,
            done=DONE,
            action_body=action_body(request),
        )

    @router.get("/ui/errors/{group_id}")
    async def error_group(request: Request, group_id: str) -> HTMLResponse:
        service = sources.errors
        common: dict[str, Any] = {"section": "errors", "refresh": sources.refresh}
        if service is None:
            return page(request, "errors.html", title="Errors", **common, enabled=False)
        tracker = service.tracker
        group = tracker.groups.get(group_id)
        if group is None:
            return page(request, "error_group.html", title="No such error group", **common,
                        status_code=404, group=None, group_id=group_id)  # fmt: skip
        now = tracker.clock()
        detail = group_detail(group, await service.samples(group_id))
        newest = detail.samples[0].stacktrace if detail.samples else ""
        return page(
            request,
            "error_group.html",
            title=f"{group.type}: {group.message}"[:120],
            **common,
            group=detail,
            stack=stack_view(newest, group.language),
            sparkline=_sparkline(group, now),
            minutes=MINUTES,
            actions=ACTIONS,
            done=DONE,
            action_body=action_body(request),
        )
