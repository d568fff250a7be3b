"""The error-tracking API on the admin listener (docs/errors.md#api).

``GET /errors``, ``GET /errors/{id}``, ``POST /errors/{id}/resolve|ignore|unresolve``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, HTTPException, Query

from gateway.api.errors_models import (
    GroupDetail,
    GroupPage,
    GroupView,
    StatusChange,
    group_detail,
    group_view,
)
from gateway.api.times import optional_epoch
from gateway.error_tracking.groups import Status
from gateway.error_tracking.service import ErrorTrackingService

MAX_PAGE = 1000
SINCE = "Last seen at or after (RFC 3339 or unix seconds)"
_ACTIONS: dict[str, Status] = {"resolve": "resolved", "ignore": "ignored",
                               "unresolve": "unresolved"}  # fmt: skip


def errors_router(service: ErrorTrackingService) -> APIRouter:
    """The error-tracking routes, for ``Gateway.admin_routers``."""
    router = APIRouter(tags=["errors"])
    tracker = service.tracker

    @router.get("/errors", response_model=GroupPage, summary="Error groups")
    async def groups(
        service_name: str | None = Query(None, alias="service"),
        status: Status | None = None,
        since: Annotated[datetime | None, Query(description=SINCE)] = None,
        sort: Literal["last_seen", "count", "first_seen"] = "last_seen",
        limit: int = Query(50, ge=1, le=MAX_PAGE),
        offset: int = Query(0, ge=0),
    ) -> GroupPage:
        after = optional_epoch(since)
        found = [
            g
            for g in list(tracker.groups.values())
            if (service_name is None or service_name in g.services)
            and status in (None, g.status)
            and (after is None or g.last_seen >= after)
        ]
        if sort == "count":
            found.sort(key=lambda g: (-g.count, -g.last_seen, g.id))
        else:
            found.sort(key=lambda g: (-getattr(g, sort), g.id))
        page = found[offset : offset + limit]
        more = offset + limit < len(found)
        return GroupPage(
            total=len(found), offset=offset, limit=limit,
            next_offset=offset + limit if more else None, groups=[group_view(g) for g in page],
        )  # fmt: skip

    @router.get(
        "/errors/{group_id}",
        response_model=GroupDetail,
        summary="One error group with its samples and stack traces",
        responses={404: {"description": "No group has this id"}},
    )
    async def one_group(group_id: str) -> GroupDetail:
        group = tracker.groups.get(group_id)
        if group is None:
            raise HTTPException(404, f"no error group with id '{group_id}'")
        return group_detail(group, await service.samples(group_id))

    for action, new_status in _ACTIONS.items():
        _status_route(router, service, action, new_status)
    return router


def _status_route(
    router: APIRouter, service: ErrorTrackingService, action: str, status: Status
) -> None:
    @router.post(
        f"/errors/{{group_id}}/{action}",
        response_model=GroupView,
        summary=f"Mark an error group {status}",
        responses={404: {"description": "No group has this id"}},
        name=f"{action}_error_group",
    )
    async def change(
        group_id: str, body: Annotated[StatusChange | None, Body()] = None
    ) -> GroupView:
        group = await service.set_status(group_id, status, body.by if body else None)
        if group is None:
            raise HTTPException(404, f"no error group with id '{group_id}'")
        return group_view(group)
