"""Making the calls of a plan: log groups and streams created on demand, rejected events and
refused data counted, progress kept across retries.

The happy path is one ``PutLogEvents`` per call. When CloudWatch answers
``ResourceNotFoundException``, the stream is created (and its group first when that is missing
too, then the group's retention set with ``PutRetentionPolicy`` when ``log_retention`` is
configured), and the call is made again. ``ResourceAlreadyExistsException`` is success: several
gateway processes may create the same stream at once. Retention is set only on groups the
exporter creates; when setting it fails transiently it is tried again before the group's next
call.

A call CloudWatch refuses for its data (``InvalidParameterException``, or botocore's own
parameter validation) is cut in halves and each is sent again, down to single events: the
refused events are counted with CloudWatch's message and the others delivered. When the message
names the group or the stream, or creating the group or stream is refused for its name, the
whole call is refused at once. Events CloudWatch accepted the
call of but rejected for their time (``rejectedLogEventsInfo``) are counted as refused: the
``tooOldLogEventEndIndex`` and ``expiredLogEventEndIndex`` first events and those from
``tooNewLogEventStartIndex`` on. The end indexes are exclusive: a call of one too-old event is
answered ``{"tooOldLogEventEndIndex": 1}`` (a real answer quoted in
https://github.com/aws/aws-for-fluent-bit/issues/523); moto's is one less.

Progress: a call leaves the plan once CloudWatch took it. When a call fails with a retryable
error the error is raised and the plan kept; the queue's retry of the same batch resumes with
that call, so calls already done are never sent again. The one duplicate left: a call that
timed out or lost its connection after CloudWatch stored it is sent again.
"""

from __future__ import annotations

import logging
from typing import Any

from exporters.cloudwatch.batching import Call, Plan
from exporters.cloudwatch.errors import blames_data, classify, error_code
from gateway.errors import GatewayError, RetryableError

log = logging.getLogger("otelgate.exporter.cloudwatch")

NOT_FOUND = "ResourceNotFoundException"
EXISTS = "ResourceAlreadyExistsException"
LIMIT = "LimitExceededException"
REJECTED_OLD = "CloudWatch rejected events older than 14 days or than the group's retention"
REJECTED_NEW = "CloudWatch rejected events more than 2 hours ahead of its clock"


def _message(exc: BaseException) -> str:
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Message", exc))
    return str(exc)


class DestinationRefused(Exception):
    """CloudWatch refused to create a call's log group or stream (e.g. for its name)."""


class Sender:
    """Sends plans through one ``logs`` client."""

    def __init__(self, client: Any, retention_days: int = 0) -> None:
        self.client = client
        self.retention_days = retention_days
        self._retention_pending: set[str] = set()

    async def run(self, plan: Plan) -> None:
        """Make every call of ``plan``; raise what ends the push (see the module doc)."""
        while plan.todo:
            call = plan.todo[0]
            what = f"putting {len(call.events)} events in {call.group}/{call.stream}"
            try:
                if call.group in self._retention_pending:
                    await self._set_retention(call.group)
                response = await self._put(call)
            except GatewayError:
                raise
            except DestinationRefused as exc:
                plan.todo.popleft()
                plan.refuse(call.items, f"cannot create {call.group}/{call.stream}: {exc}")
                continue
            except Exception as exc:
                plan.todo.popleft()
                if blames_data(exc):
                    self._isolate(call, exc, plan)
                    continue
                if error_code(exc) == LIMIT:  # too many groups in the account: this one only
                    plan.refuse(call.items, f"cannot create log group {call.group}: {exc}")
                    continue
                plan.todo.appendleft(call)
                raise classify(exc, what) from exc
            plan.todo.popleft()
            plan.sent += call.items - self._rejected(call, response, plan)

    async def _put(self, call: Call) -> dict[str, Any]:
        request = call.request()
        try:
            response: dict[str, Any] = await self.client.put_log_events(**request)
            return response
        except Exception as exc:
            if error_code(exc) != NOT_FOUND:
                raise
        try:
            await self._create(call.group, call.stream)
        except Exception as exc:
            if blames_data(exc):  # the same for every event: no point in halving the call
                raise DestinationRefused(_message(exc)) from exc
            raise
        try:
            response = await self.client.put_log_events(**request)
        except Exception as exc:
            if error_code(exc) == NOT_FOUND:  # created, not visible yet
                raise RetryableError(f"{call.group}/{call.stream} created, not found yet") from exc
            raise
        return response

    async def _create(self, group: str, stream: str) -> None:
        """Create ``stream`` in ``group``, and ``group`` when it is missing."""
        try:
            await self.client.create_log_stream(logGroupName=group, logStreamName=stream)
            log.info("cloudwatch: created log stream %s in %s", stream, group)
            return
        except Exception as exc:
            code = error_code(exc)
            if code == EXISTS:
                return
            if code != NOT_FOUND:
                raise
        try:
            await self.client.create_log_group(logGroupName=group)
            log.info("cloudwatch: created log group %s", group)
            if self.retention_days:
                self._retention_pending.add(group)
                await self._set_retention(group)
        except Exception as exc:
            if error_code(exc) != EXISTS:
                raise
        try:
            await self.client.create_log_stream(logGroupName=group, logStreamName=stream)
        except Exception as exc:
            if error_code(exc) != EXISTS:
                raise

    async def _set_retention(self, group: str) -> None:
        """Set the retention of a group the exporter created. A transient failure is raised
        (tried again before the group's next call); a final one is logged, not retried."""
        try:
            await self.client.put_retention_policy(
                logGroupName=group, retentionInDays=self.retention_days
            )
        except Exception as exc:
            error = classify(exc, f"setting the retention of {group}")
            if isinstance(error, RetryableError):
                raise error from exc
            log.error("cloudwatch: log group %s keeps its events forever: %s", group, error)
        self._retention_pending.discard(group)

    @staticmethod
    def _isolate(call: Call, exc: BaseException, plan: Plan) -> None:
        """Halve a call refused for its data; refuse single events (or a bad name) for good."""
        message = _message(exc)
        names_it = "logGroupName" in message or "logStreamName" in message
        if len(call.events) == 1 or names_it:
            plan.refuse(call.items, f"CloudWatch refused: {message}")
            return
        first, second = call.split()
        plan.todo.appendleft(second)
        plan.todo.appendleft(first)

    @staticmethod
    def _rejected(call: Call, response: dict[str, Any], plan: Plan) -> int:
        """Count the events CloudWatch rejected in an accepted call; returns their items."""
        info = response.get("rejectedLogEventsInfo") or {}
        if not info:
            return 0
        n = len(call.events)
        old_end = min(
            n, max(info.get("tooOldLogEventEndIndex", 0), info.get("expiredLogEventEndIndex", 0))
        )
        new_start = max(old_end, min(n, info.get("tooNewLogEventStartIndex", n)))
        old = sum(e.items for e in call.events[:old_end])
        new = sum(e.items for e in call.events[new_start:])
        plan.refuse(old, REJECTED_OLD)
        plan.refuse(new, REJECTED_NEW)
        return old + new
