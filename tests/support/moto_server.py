"""moto's server mode (a real AWS API emulator) on 127.0.0.1 for the cloudwatch tests, with
boto3 to read back what CloudWatch Logs holds.

What moto does with PutLogEvents (moto 5.2, ``moto/logs/models.py``): an unknown group or
stream is ``ResourceNotFoundException``, events out of chronological order are
``InvalidParameterException``, events older than 14 days or more than 2 hours ahead are left
out and reported in ``rejectedLogEventsInfo``. Unlike the API reference, moto's
``tooOldLogEventEndIndex`` is the index of the last too-old event (AWS's is exclusive), and
moto does not enforce the call limits (events, bytes, 24 hours) nor ``expiredLogEventEndIndex``:
the tests check those limits on the calls the exporter made (:func:`record_calls`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
from moto.server import ThreadedMotoServer

from tests.support.ports import free_port

REGION = "us-east-1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",  # never look for an instance role
}


class MotoServer:
    """A moto server thread; ``reset()`` forgets every group between tests. moto keeps its
    state in the process, shared by every server of it: a server starts by forgetting it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    def __enter__(self) -> MotoServer:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        self._server.start()
        self.reset()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    def reset(self) -> None:
        httpx.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()

    def client(self) -> Any:
        """A boto3 ``logs`` client of the server (fake credentials)."""
        return boto3.client(
            "logs",
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def groups(self) -> dict[str, dict[str, Any]]:
        """Every log group by name."""
        pages = self.client().get_paginator("describe_log_groups").paginate()
        return {g["logGroupName"]: g for page in pages for g in page["logGroups"]}

    def streams(self, group: str) -> list[str]:
        pages = self.client().get_paginator("describe_log_streams").paginate(logGroupName=group)
        return sorted(s["logStreamName"] for page in pages for s in page["logStreams"])

    def events(self, group: str, stream: str) -> list[dict[str, Any]]:
        """The stream's events in the order stored (``timestamp``, ``message``)."""
        client, found, token = self.client(), [], None
        for _ in range(10_000):  # bounded: one page per 10,000 events
            args: dict[str, Any] = {"logGroupName": group, "logStreamName": stream,
                                    "startFromHead": True, "limit": 10_000}  # fmt: skip
            if token:
                args["nextToken"] = token
            page = client.get_log_events(**args)
            found += [{"timestamp": e["timestamp"], "message": e["message"]}
                      for e in page["events"]]  # fmt: skip
            if not page["events"] or page["nextForwardToken"] == token:
                break
            token = page["nextForwardToken"]
        return found


@dataclass
class RecordedCall:
    """A ``PutLogEvents`` request as it went on the wire, and the HTTP status it got."""

    group: str
    stream: str
    events: list[dict[str, Any]]
    status: int = 0

    @property
    def nbytes(self) -> int:
        return sum(len(e["message"].encode()) + 26 for e in self.events)


def record_calls(client: Any) -> list[RecordedCall]:
    """Every PutLogEvents request ``client`` (aiobotocore or boto3) sends from now on, one at
    a time, with its answer's status."""
    calls: list[RecordedCall] = []

    def request(params: dict[str, Any], **_: Any) -> None:
        body = json.loads(params["body"])
        calls.append(RecordedCall(body["logGroupName"], body["logStreamName"], body["logEvents"]))

    def answer(http_response: Any, **_: Any) -> None:
        calls[-1].status = http_response.status_code

    client.meta.events.register("before-call.cloudwatch-logs.PutLogEvents", request)
    client.meta.events.register("after-call.cloudwatch-logs.PutLogEvents", answer)
    return calls


def accepted(calls: list[RecordedCall]) -> list[RecordedCall]:
    """The calls answered 200."""
    return [call for call in calls if call.status == 200]


def messages(events: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> list[str]:
    return [e["message"] for e in events]
