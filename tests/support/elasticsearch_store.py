"""What the Elasticsearch look-alike holds, and what each action of a ``_bulk`` does to it.

:class:`Store` runs the actions of :func:`~tests.support.elasticsearch_bulk.parse_bulk` in order,
each judged alone as Elasticsearch 8.x/9.x does: an invalid index name, a non-``create`` write to
a data stream, an unknown pipeline, an injected rejection, a version conflict, a source that does
not parse or does not fit the mapping (:mod:`tests.support.elasticsearch_mapping`) fails that item
only; the answer has one item per action, in request order. A name matching a data stream pattern
becomes a data stream writing to ``.ds-<name>-<yyyy.MM.dd>-000001``; any other valid name, an
index. Each rule and its source is in ``tests/support/REAL_ELASTICSEARCH.md``.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from tests.support.elasticsearch_bulk import (
    Action,
    JsonSyntaxError,
    read_json,
    token_name,
)
from tests.support.elasticsearch_mapping import (
    INDEX,
    LOGS,
    METRICS,
    OTEL_LOGS,
    OTEL_METRICS,
    OTEL_TRACES,
    OTHER_DATA_STREAM,
    DocumentRefused,
    Mapping,
    parsing_error,
)

# The templates that make these names data streams, highest priority first: the OTel-native ones
# (priority 120, the otel-data plugin), then the built-in ones (priority 100; traces-*-* as the
# APM integration installs it).
DATA_STREAM_PATTERNS = (
    "logs-*.otel-*", "metrics-*.otel-*", "traces-*.otel-*",
    "logs-*-*", "metrics-*-*", "synthetics-*-*", "traces-*-*",
)  # fmt: skip
FLAVORS = {
    "logs-*.otel-*": OTEL_LOGS, "metrics-*.otel-*": OTEL_METRICS, "traces-*.otel-*": OTEL_TRACES,
    "logs-*-*": LOGS, "metrics-*-*": METRICS,
}  # fmt: skip
INVALID_NAME_CHARS = '\\/*?"<>| ,'
SHARDS = {"total": 2, "successful": 1, "failed": 0}  # one primary, one unassigned replica


def index_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be an index or data stream name (``MetadataCreateIndexService``)."""
    if any(ch in name for ch in INVALID_NAME_CHARS):
        return 'must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?]'
    size = len(name.encode())
    checks = [
        (name == "", "must not be empty"),
        ("#" in name, "must not contain '#'"),
        (":" in name, "must not contain ':'"),
        (name[:1] in ("_", "-", "+"), "must not start with '_', '-', or '+'"),
        (size > 255, f"index name is too long, ({size} > 255)"),
        (name in (".", ".."), "must not be '.' or '..'"),
        (name.lower() != name, "must be lowercase"),
    ]
    return next((problem for failed, problem in checks if failed), None)


def new_id(size: int = 15) -> str:
    """An auto-generated ``_id``: 20 URL-safe base64 characters, like Elasticsearch's."""
    return base64.urlsafe_b64encode(os.urandom(size)).decode().rstrip("=")


@dataclass
class Doc:
    source: Any
    version: int
    seq_no: int
    arrival: int


@dataclass
class Target:
    """A data stream (writing to its first backing index) or a plain index."""

    name: str
    data_stream: bool
    write_index: str
    mapping: Mapping
    uuid: str = field(default_factory=lambda: new_id(16)[:22])
    docs: dict[str, Doc] = field(default_factory=dict)
    seq_no: int = -1


class ItemError(Exception):
    def __init__(self, status: int, error: dict[str, Any], index: str, ident: str | None) -> None:
        super().__init__(error["reason"])
        self.status, self.error, self.index, self.ident = status, error, index, ident


def rejection_error(status: int, index: str) -> dict[str, Any]:
    """The per-item error of an injected rejection with ``status``."""
    if status == 429:
        return {
            "type": "es_rejected_execution_exception",
            "reason": "rejected execution of "
            "primary operation [shard_detail=[" + index + "][0][node-1]] "
            "on EsThreadPoolExecutor[name = node-1/write, queue capacity = 10000]",
        }
    if status == 503:
        return {
            "type": "unavailable_shards_exception",
            "reason": f"[{index}][0] primary shard is "
            f"not active Timeout: [1m], request: [BulkShardRequest [[{index}][0]] containing "
            "[1] requests]",
        }
    return {"type": "exception", "reason": f"injected item failure (status {status})"}


class Store:
    """What the look-alike holds, and how a bulk request's actions change it."""

    def __init__(self, patterns: tuple[str, ...], pipelines: frozenset[str]) -> None:
        self.patterns = patterns
        self.pipelines = pipelines
        self.targets: dict[str, Target] = {}
        self.arrivals = 0

    def _create(self, name: str) -> Target:
        pattern = next((p for p in self.patterns if fnmatchcase(name, p)), None)
        if pattern is None:
            target = Target(name, False, name, Mapping(INDEX))
        else:
            flavor = FLAVORS.get(pattern, OTHER_DATA_STREAM)
            day = datetime.datetime.now(datetime.UTC).strftime("%Y.%m.%d")
            target = Target(name, True, f".ds-{name}-{day}-000001", Mapping(flavor))
        self.targets[name] = target
        return target

    def execute(
        self, actions: list[Action], refresh: bool, take_rejection: Callable[[], int | None]
    ) -> tuple[list[dict[str, Any]], list[tuple[str, int, str, str]]]:
        """The answer's items (request order) and, for each failed one, (target, status, type,
        reason)."""
        items: list[dict[str, Any]] = []
        refusals: list[tuple[str, int, str, str]] = []
        for action in actions:
            try:
                result = self._run(action, refresh, take_rejection)
            except ItemError as exc:
                result = {
                    "_index": exc.index,
                    "_id": exc.ident,
                    "status": exc.status,
                    "error": exc.error,
                }
                refusals.append(
                    (action.index or "", exc.status, exc.error["type"], exc.error["reason"])
                )
            items.append({action.op: result})
        return items, refusals

    def _resolve(self, action: Action) -> Target:
        name = action.index or ""
        target = self.targets.get(name)
        if target is None:
            problem = index_name_problem(name)
            if problem is not None:
                error = {
                    "type": "invalid_index_name_exception",
                    "reason": f"Invalid index name [{name}], {problem}",
                    "index_uuid": "_na_",
                    "index": name,
                }
                raise ItemError(400, error, name, action.id)
            if action.op == "delete":
                error = {
                    "type": "index_not_found_exception",
                    "reason": f"no such index [{name}]",
                    "resource.type": "index_or_alias",
                    "resource.id": name,
                    "index_uuid": "_na_",
                    "index": name,
                }
                raise ItemError(404, error, name, action.id)
            target = self._create(name)
        if target.data_stream and action.op != "create":
            error = {
                "type": "illegal_argument_exception",
                "reason": "only write ops with an op_type of create are allowed in data streams",
            }
            raise ItemError(400, error, name, action.id)
        if target.data_stream and action.routing is not None:
            error = {
                "type": "illegal_argument_exception",
                "reason": f"index request targeting "
                f"data stream [{name}] specifies a custom routing but the "
                "[allow_custom_routing] setting was not enabled in the data stream's "
                "template.",
            }
            raise ItemError(400, error, name, action.id)
        pipeline = action.pipeline
        writes = action.op in ("index", "create")
        if writes and pipeline not in (None, "_none") and pipeline not in self.pipelines:
            error = {
                "type": "illegal_argument_exception",
                "reason": f"pipeline with id [{pipeline}] does not exist",
            }
            raise ItemError(400, error, name, action.id)
        return target

    def _run(
        self, action: Action, refresh: bool, take_rejection: Callable[[], int | None]
    ) -> dict[str, Any]:
        target = self._resolve(action)
        ident = action.id if action.id is not None else new_id()
        rejected = take_rejection()
        if rejected is not None:
            raise ItemError(
                rejected, rejection_error(rejected, target.write_index), target.write_index, ident
            )
        shard_error = {"index_uuid": target.uuid, "shard": "0", "index": target.write_index}
        doc = target.docs.get(ident)
        if action.op == "delete":
            if doc is not None:
                del target.docs[ident]
                return self._written(target, ident, doc.version + 1, "deleted", 200, refresh)
            return self._written(target, ident, 1, "not_found", 404, refresh)
        if action.op == "update":
            body = action.update or {}
            if doc is None:
                if body.get("doc_as_upsert") is True or "upsert" in body:
                    fresh = body["doc"] if "upsert" not in body else body["upsert"]
                    return self._store(target, ident, fresh, None, "created", refresh)
                error = {
                    "type": "document_missing_exception",
                    "reason": f"[{ident}]: document missing",
                    **shard_error,
                }
                raise ItemError(404, error, target.write_index, ident)
            merged = _merge(doc.source, body.get("doc", {}))
            if merged == doc.source and body.get("detect_noop", True) is not False:
                noop = {
                    "_index": target.write_index,
                    "_id": ident,
                    "_version": doc.version,
                    "result": "noop",
                    "_shards": {"total": 0, "successful": 0, "failed": 0},
                    "_seq_no": doc.seq_no,
                    "_primary_term": 1,
                    "status": 200,
                }
                return noop
            return self._store(target, ident, merged, doc, "updated", refresh)
        if doc is not None and action.op == "create":
            error = {
                "type": "version_conflict_engine_exception",
                "reason": f"[{ident}]: version "
                f"conflict, document already exists (current version [{doc.version}])",
                **shard_error,
            }
            raise ItemError(409, error, target.write_index, ident)
        text = action.source or b""
        try:
            source, cols, following = read_json(text.decode("utf-8"))
        except (JsonSyntaxError, UnicodeDecodeError) as exc:
            if isinstance(exc, UnicodeDecodeError):
                exc = JsonSyntaxError(exc.start + 1, "Invalid UTF-8 start byte")
            cause = {"type": "x_content_parse_exception", "reason": f"[1:{exc.col}] {exc.message}"}
            refused = parsing_error(exc.col, f"failed to parse: [1:{exc.col}] {exc.message}", cause)
            raise ItemError(400, refused.error, target.write_index, ident) from None
        if following is not None:
            message = f"Malformed content, found extra data after parsing: {token_name(following)}"
            cause = {"type": "illegal_argument_exception", "reason": message}
            refused = parsing_error(len(text), f"failed to parse: {message}", cause)
            raise ItemError(400, refused.error, target.write_index, ident)
        return self._store(
            target,
            ident,
            source,
            doc,
            "updated" if doc else "created",
            refresh,
            cols=cols,
            end_col=len(text.rstrip()),
        )

    def _store(
        self,
        target: Target,
        ident: str,
        source: Any,
        old: Doc | None,
        result: str,
        refresh: bool,
        cols: Any = None,
        end_col: int = 0,
    ) -> dict[str, Any]:
        if cols is None:  # an update's new source: read back to know its columns
            text = json.dumps(source, separators=(",", ":"))
            source, cols, _ = read_json(text)
            end_col = len(text)
        try:
            target.mapping.index(source, cols, ident, end_col)
        except DocumentRefused as exc:
            raise ItemError(400, exc.error, target.write_index, ident) from None
        version = old.version + 1 if old else 1
        self.arrivals += 1
        target.seq_no += 1
        target.docs[ident] = Doc(source, version, target.seq_no, self.arrivals)
        status = 201 if result == "created" else 200
        return self._written(target, ident, version, result, status, refresh, advance=False)

    def _written(
        self,
        target: Target,
        ident: str,
        version: int,
        result: str,
        status: int,
        refresh: bool,
        advance: bool = True,
    ) -> dict[str, Any]:
        if advance:
            target.seq_no += 1
        item = {
            "_index": target.write_index,
            "_id": ident,
            "_version": version,
            "result": result,
            "_shards": dict(SHARDS),
            "_seq_no": target.seq_no,
            "_primary_term": 1,
            "status": status,
        }
        if refresh:
            item["forced_refresh"] = True
        return item


def _merge(old: Any, patch: Any) -> Any:
    """An update's partial ``doc`` merged into the source (objects merge, the rest replaces)."""
    if not isinstance(old, dict) or not isinstance(patch, dict):
        return patch
    merged = dict(old)
    for key, value in patch.items():
        merged[key] = _merge(old[key], value) if key in old else value
    return merged
