"""Sending one translated ``WriteRequest``: in pieces under the size limit and, when the receiver
refuses data, down to the series it refuses.

Remote write keeps per-series state (delta totals, last timestamps), so a refused batch is not
split and translated again like other exporters' (that would add deltas twice): the series
of the one translation are split instead. What Prometheus answers (2.42, ``write_handler.go``;
issue 10):

* 400 for samples it cannot take (out of order, out of bounds, too old, a duplicate timestamp
  with another value). It **appends the other samples** of the request first; resending them
  is harmless, as a sample identical to the one stored at its timestamp is ignored;
* 500 naming a label ("label name "le" is not unique", an invalid name): the whole request
  is rolled back;
* 429 and 5xx otherwise: overload or trouble, retried by the queue.

A piece refused for its data is halved until the refused series stand alone; the data points
they came from are reported refused, every other series is delivered.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cramjam
import httpx

from exporters.http_post import error_text
from exporters.prometheus import remote_write_pb as pb
from gateway.errors import GatewayError, RefusedDataError, classify_push_status

DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024  # before snappy; Prometheus sends ~2000 samples
_DATA_ERRORS_500 = re.compile(r"is not unique|invalid|out of order|out of bounds|duplicate")

Post = Callable[[bytes], Awaitable[httpx.Response]]


@dataclass(slots=True)
class Translated:
    """One batch's ``WriteRequest`` and, per series, the data point it came from (None for
    ``target_info``)."""

    request: Any
    owners: list[int | None]


def classify_response(response: httpx.Response) -> GatewayError:
    """A refusal of the data, throttling, a transient error or a final one (module doc)."""
    retry_after = response.headers.get("Retry-After")
    return classify_push_status(
        response.status_code, error_text(response), retry_after, _DATA_ERRORS_500
    )


async def send(translated: Translated, post: Post, max_bytes: int) -> tuple[set[int], str]:
    """Deliver ``translated``; returns the data points refused and the first reason. Raises
    what is not a refusal of the data."""
    request = translated.request
    series = request.timeseries
    pending = list(reversed(_pieces([s.ByteSize() for s in series], max_bytes)))
    refused: list[int] = []
    reason = ""
    while pending:
        piece = pending.pop()
        response = await post(_encode(request, piece))
        if 200 <= response.status_code < 300:
            continue
        error = classify_response(response)
        if not isinstance(error, RefusedDataError):
            raise error
        if len(piece) == 1:
            refused.append(piece[0])
            reason = reason or str(error)
            continue
        middle = len(piece) // 2
        pending += [piece[middle:], piece[:middle]]
    points = {owner for i in refused if (owner := translated.owners[i]) is not None}
    return points, reason


def _pieces(sizes: Sequence[int], max_bytes: int) -> list[list[int]]:
    """Consecutive series indices in groups of at most ``max_bytes`` (at least one each)."""
    pieces: list[list[int]] = [[]]
    total = 0
    for index, size in enumerate(sizes):
        if pieces[-1] and max_bytes and total + size > max_bytes:
            pieces.append([])
            total = 0
        pieces[-1].append(index)
        total += size
    return pieces


def _encode(request: Any, piece: list[int]) -> bytes:
    """The snappy body of the series in ``piece`` (with all the metadata)."""
    if len(piece) == len(request.timeseries):
        payload = request.SerializeToString()
    else:
        part = pb.WriteRequest()
        part.timeseries.extend(request.timeseries[i] for i in piece)
        part.metadata.extend(request.metadata)
        payload = part.SerializeToString()
    return bytes(cramjam.snappy.compress_raw(payload))
