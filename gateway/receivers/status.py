"""``google.rpc.Status`` bodies for refusals, shared by the HTTP and gRPC receivers."""

from __future__ import annotations

import math

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import BadRequest, RetryInfo
from google.rpc.status_pb2 import Status

from gateway.errors import BadRequestError, RefusedError


def refusal_status(error: RefusedError) -> Status:
    """The Status for ``error``: its gRPC code and message, plus BadRequest or RetryInfo."""
    status = Status(code=error.grpc_code.value[0], message=str(error))
    if isinstance(error, BadRequestError):
        violation = BadRequest.FieldViolation(field="request", description=str(error))
        status.details.add().Pack(BadRequest(field_violations=[violation]))
    if error.retry_after is not None:
        delay = Duration()
        delay.FromMilliseconds(math.ceil(error.retry_after * 1000))  # never shorter
        status.details.add().Pack(RetryInfo(retry_delay=delay))
    return status


def retry_after_header(error: RefusedError) -> dict[str, str]:
    """A ``Retry-After`` header (whole seconds, rounded up) when the error carries a delay."""
    if error.retry_after is None:
        return {}
    return {"Retry-After": str(max(1, math.ceil(error.retry_after)))}


def plain_status(code: grpc.StatusCode, message: str) -> Status:
    """A Status with only a code and a message (unknown paths, wrong methods)."""
    return Status(code=code.value[0], message=message)
