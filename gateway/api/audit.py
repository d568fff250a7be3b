"""The audit trail on the admin listener (docs/audit.md#api): ``GET /audit``, newest first.

The admin scope is checked by the admin listener's auth middleware, not here.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from gateway.audit.reader import MAX_SCAN, Page, read_page
from gateway.audit.trail import AuditTrail

MAX_PAGE = 1000


class AuditEntryView(BaseModel):
    """One entry as written, with its hash (the next entry's ``prev``)."""

    seq: int
    time: str
    action: str
    actor: str | None
    details: dict[str, Any]
    alg: str
    prev: str
    hash: str | None = Field(description="The link to this entry (null: HMAC without the key).")
    file: str = Field(description="The file it is in (a name beside the audit path).")


class AuditHeadView(BaseModel):
    """The newest entry: an anchor for ``otelgate audit verify --head``."""

    seq: int
    hash: str
    file: str


class AuditPage(BaseModel):
    """A page of entries, newest first."""

    entries: list[AuditEntryView]
    next: int | None = Field(
        description="Pass as before_seq for the next (older) page; null at the start."
    )
    scanned: int = Field(description="Entries read for this page (filters may skip many).")
    head: AuditHeadView | None


def audit_router(trail: AuditTrail) -> APIRouter:
    """The audit route, for ``Gateway.admin_routers`` (behind the admin scope)."""
    router = APIRouter(tags=["audit"])

    @router.get("/audit", response_model=AuditPage, summary="Audit trail entries, newest first")
    async def entries(
        limit: int = Query(100, ge=1, le=MAX_PAGE),
        before_seq: Annotated[
            int | None, Query(ge=1, description="Only entries with a smaller seq (the cursor)")
        ] = None,
        action: Annotated[
            str | None, Query(description="An action or its dotted prefix (auth, auth.failure)")
        ] = None,
        actor: Annotated[str | None, Query(description="Only this token or user")] = None,
    ) -> AuditPage:
        page = await run_in_threadpool(_read, trail, limit, before_seq, action, actor)
        head = trail.head
        return AuditPage(
            entries=[
                AuditEntryView(**item.entry.as_dict(), hash=item.hash, file=item.file)
                for item in page.entries
            ],
            next=page.next,
            scanned=page.scanned,
            head=None
            if head is None
            else AuditHeadView(seq=head.seq, hash=head.hash, file=head.file.name),
        )

    return router


def _read(
    trail: AuditTrail, limit: int, before_seq: int | None, action: str | None, actor: str | None
) -> Page:
    def once() -> Page:
        return read_page(
            trail.files(), trail.linker, limit=limit, before_seq=before_seq,
            action=action, actor=actor, max_scan=MAX_SCAN,
        )  # fmt: skip

    try:
        return once()
    except FileNotFoundError:  # a rotation renamed a file while it was being read
        return once()
