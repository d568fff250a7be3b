"""The ``_bulk`` API's wire format: the NDJSON request and what its answer says per document.

A bulk request is one action line and one source line per document, each ending in ``\\n``
(the last one too, or Elasticsearch refuses the whole request). Data streams take only the
``create`` action. The answer lists one result per action, in request order, each with its own
HTTP status; the request as a whole is answered 200 even when documents failed (``errors``
true). Source: the Bulk API reference,
https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-bulk, and "Use a data
stream", https://www.elastic.co/docs/manage-data/data-store/data-streams/use-data-stream.

What a document's status means here:

* 2xx: stored. 409 (``version_conflict_engine_exception``) is a document that already exists,
  which only a resend of a stored one can cause: counted as stored;
* 429 (``es_rejected_execution_exception``: a write queue was full) and 5xx (a shard that was
  unavailable or failed): sent again, alone, with backoff;
* any other 4xx (``document_parsing_exception``, ``invalid_index_name_exception``, ...): refused
  for its content; sending it again cannot help.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from exporters.elasticsearch.mapping import Document
from gateway.errors import GatewayError, PermanentError, RefusedDataError, classify_http_status

# Ask only for what is read: a full answer repeats _index, _id, _shards... per document.
FILTER_PATH = "errors,items.*.error,items.*.status"
MAX_QUOTED_REASONS = 3


def encode_bulk(documents: Iterable[Document]) -> bytes:
    """The NDJSON body: a ``create`` into each document's data stream, then its source."""
    actions: dict[str, bytes] = {}
    parts: list[bytes] = []
    for document in documents:
        action = actions.get(document.index)
        if action is None:
            action = actions[document.index] = orjson.dumps({"create": {"_index": document.index}})
        parts.append(action)
        parts.append(document.source)
    parts.append(b"")
    return b"\n".join(parts)


@dataclass(slots=True)
class BulkOutcome:
    """What became of each document of one bulk request."""

    stored: int = 0
    retry: list[int] = field(default_factory=list)  # positions to send again
    retry_statuses: Counter[int] = field(default_factory=Counter)
    refused: int = 0
    refusals: Counter[str] = field(default_factory=Counter)  # "type: reason" -> documents

    def refusal_reason(self) -> str:
        """The refusals as one line: the commonest reasons with their counts."""
        quoted = [
            f"{reason} (x{count})" if count > 1 else reason
            for reason, count in self.refusals.most_common(MAX_QUOTED_REASONS)
        ]
        more = len(self.refusals) - len(quoted)
        return "; ".join(quoted) + (f"; and {more} other reason(s)" if more > 0 else "")

    def retry_reason(self) -> str:
        statuses = ", ".join(f"{n} x HTTP {s}" for s, n in sorted(self.retry_statuses.items()))
        return f"Elasticsearch asked for {len(self.retry)} document(s) again ({statuses})"


def read_bulk_answer(body: bytes, documents: int) -> BulkOutcome:
    """Each document's result from a 2xx bulk answer; a malformed answer raises
    :class:`PermanentError` (nothing in it says which documents were stored)."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PermanentError(f"Elasticsearch: the bulk answer is not JSON: {exc}") from exc
    if not isinstance(answer, dict):
        raise PermanentError("Elasticsearch: the bulk answer is not a JSON object")
    outcome = BulkOutcome()
    items = answer.get("items")
    if answer.get("errors") is False and items is None:
        outcome.stored = documents  # a filter_path that left the items out
        return outcome
    if not isinstance(items, list) or len(items) != documents:
        got = len(items) if isinstance(items, list) else "no"
        raise PermanentError(f"Elasticsearch answered {got} item results for {documents} documents")
    for position, item in enumerate(items):
        result = _only_value(item)
        status = result.get("status")
        if not isinstance(status, int):
            raise PermanentError(f"Elasticsearch: item {position} of the bulk answer has no status")
        if 200 <= status < 300 or status == 409:
            outcome.stored += 1
        elif status == 429 or status >= 500:
            outcome.retry.append(position)
            outcome.retry_statuses[status] += 1
        else:
            outcome.refused += 1
            outcome.refusals[f"HTTP {status} {error_summary(result.get('error'))}"] += 1
    return outcome


def _only_value(item: object) -> dict[str, Any]:
    """``{"create": {...}}`` -> its result object."""
    if isinstance(item, dict) and len(item) == 1:
        (result,) = item.values()
        if isinstance(result, dict):
            return result
    raise PermanentError(f"Elasticsearch: unexpected bulk item {str(item)[:200]}")


def error_summary(error: object) -> str:
    """``type: reason`` of an Elasticsearch error object (or the text it is)."""
    if isinstance(error, dict):
        kind, reason = error.get("type"), error.get("reason")
        cause = error.get("caused_by")
        text = f"{kind}: {reason}" if kind and reason else str(kind or reason or error)
        if isinstance(cause, dict) and cause.get("reason"):
            text += f" (caused by {cause.get('type')}: {cause.get('reason')})"
        return text[:300]
    return str(error)[:300] if error else "no reason given"


def classify_bulk_status(status: int, body: bytes, retry_after: str | None) -> GatewayError:
    """The error for a non-2xx answer to the whole request: 413 (over
    ``http.max_content_length``) cuts the batch; 429 (a circuit breaker) and 503 throttle,
    other 5xx are retried; 401/403 and other 4xx (a malformed request, a missing pipeline)
    are final."""
    message = _request_error(body)
    if status == 413:
        return RefusedDataError(f"Elasticsearch HTTP 413: {message}")
    if status == 401:
        return PermanentError(f"Elasticsearch HTTP 401: {message}; check api_key or user/password")
    if status == 403:
        return PermanentError(
            f"Elasticsearch HTTP 403: {message}; the credentials need the create_doc (or "
            "write) and auto_configure privileges on the logs-* data streams"
        )
    error = classify_http_status(status, message, retry_after)
    if isinstance(error, RefusedDataError):  # a 400 on the whole request is not about an item
        return PermanentError(str(error))
    return error


def _request_error(body: bytes) -> str:
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:300].decode("utf-8", "replace").strip() or "no message"
    if isinstance(answer, dict) and "error" in answer:
        return error_summary(answer["error"])
    return str(answer)[:300]
