"""Response models of the error-tracking API (they document ``/openapi.json``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from gateway.error_tracking.groups import ErrorGroup, Sample, Status


def _time(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


class FrameView(BaseModel):
    """A frame that went into the fingerprint."""

    file: str
    function: str
    module: str | None
    line: int | None


class SampleLinks(BaseModel):
    """Where the request of a sample can be seen."""

    trace: str | None = Field(description="GET this for the whole trace")
    logs: str | None = Field(description="GET this for the trace's log records")


class SampleView(BaseModel):
    """One occurrence kept in full."""

    time: datetime
    trace_id: str | None
    span_id: str | None
    service: str
    service_version: str | None
    environment: str | None
    source: str = Field(description="span (an exception event) or log (a log record)")
    message: str = Field(description="The message as reported")
    stacktrace: str
    attributes: dict[str, str] = Field(description="HTTP route, method, status, user id, ...")
    links: SampleLinks


class GroupView(BaseModel):
    """An error group: every occurrence of one fingerprint."""

    id: str
    type: str
    message: str = Field(description="The first message seen, numbers, ids and values masked")
    culprit: str = Field(description="The top in-app frame")
    language: str
    basis: str = Field(description="stack: grouped by type and frames; message: no stack")
    count: int = Field(description="Requests (traces) the error hit; reports without a trace "
                       "count one each")  # fmt: skip
    events: int = Field(description="Every report (a span event and a log line of one request "
                        "are two)")  # fmt: skip
    first_seen: datetime
    last_seen: datetime
    services: list[str]
    service_versions: list[str]
    environments: list[str]
    status: Status
    status_changed_at: datetime | None
    status_changed_by: str | None
    regression: bool = Field(description="Seen again in a newer version after being resolved")
    regressed_at: datetime | None
    regressions: int
    links: dict[str, str]


class GroupDetail(GroupView):
    """A group with its fingerprint frames and samples (newest first)."""

    frames: list[FrameView]
    samples: list[SampleView]


class GroupPage(BaseModel):
    """One page of groups."""

    total: int
    offset: int
    limit: int
    next_offset: int | None
    groups: list[GroupView]


class StatusChange(BaseModel):
    """Who changes a group's status (optional)."""

    by: str | None = Field(default=None, max_length=200)


def _recent(seen: dict[str, float]) -> list[str]:
    return sorted(seen, key=lambda k: (-seen[k], k))


def group_view(group: ErrorGroup) -> GroupView:
    """The API form of a group."""
    return GroupView(**_group_fields(group))


def group_detail(group: ErrorGroup, samples: list[Sample]) -> GroupDetail:
    """The API form of a group with its samples."""
    frames = [FrameView(file=f.file, function=f.function, module=f.module, line=f.line)
              for f in group.frames]  # fmt: skip
    return GroupDetail(
        **_group_fields(group), frames=frames, samples=[sample_view(s) for s in samples]
    )


def _group_fields(group: ErrorGroup) -> dict[str, Any]:
    return {
        "id": group.id, "type": group.type, "message": group.message, "culprit": group.culprit,
        "language": group.language, "basis": group.basis, "count": group.count,
        "events": group.events, "first_seen": _time(group.first_seen),
        "last_seen": _time(group.last_seen), "services": _recent(group.services),
        "service_versions": _recent(group.versions),
        "environments": _recent(group.environments), "status": group.status,
        "status_changed_at": _time(group.status_changed_at),
        "status_changed_by": group.status_changed_by,
        "regression": group.regressed_at is not None and group.status == "unresolved",
        "regressed_at": _time(group.regressed_at), "regressions": group.regressions,
        "links": {"self": f"/errors/{group.id}"},
    }  # fmt: skip


def sample_view(sample: Sample) -> SampleView:
    """The API form of a sample, linked to its trace and the trace's logs."""
    trace = sample.trace_id
    return SampleView(
        time=datetime.fromtimestamp(sample.time, UTC),
        trace_id=trace,
        span_id=sample.span_id,
        service=sample.service,
        service_version=sample.version,
        environment=sample.environment,
        source=sample.source,
        message=sample.message,
        stacktrace=sample.stacktrace,
        attributes=sample.attributes,
        links=SampleLinks(
            trace=f"/traces/{trace}" if trace else None,
            logs=f"/logs?trace_id={trace}" if trace else None,
        ),
    )
