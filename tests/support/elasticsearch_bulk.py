"""How the Elasticsearch look-alike reads a ``_bulk`` body: JSON as Elasticsearch reads it, and
the NDJSON body as ``BulkRequestParser`` does.

:func:`read_json` reads a line like Jackson in Elasticsearch: strict JSON (no ``NaN``, no control
characters in strings), duplicate keys refused, each value's column kept so errors carry
Elasticsearch's ``[1:col]``. :func:`parse_bulk` turns a body into :class:`Action` s; what it
refuses (no final newline, a malformed action line, an update body that is not an update, the
request validation) refuses the **whole** request with 400 (:class:`EsError`). What each action
then does is :mod:`tests.support.elasticsearch_store`. Each rule and its source is in
``tests/support/REAL_ELASTICSEARCH.md``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_WS = " \t\n\r"


class JsonSyntaxError(Exception):
    """A line that is not JSON, as Jackson reports it (``eof``: the text ended too soon)."""

    def __init__(self, col: int, message: str, eof: bool = False) -> None:
        super().__init__(message)
        self.col = col
        self.message = message
        self.eof = eof


class _Reader:
    """A strict JSON reader that keeps columns: a dict's columns are ``{key: (col, sub)}``, a
    list's ``[(col, sub)]``, a scalar's ``None``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _ws(self) -> str:
        while self.pos < len(self.text) and self.text[self.pos] in _WS:
            self.pos += 1
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _unexpected(self, expecting: str) -> JsonSyntaxError:
        ch = self._ws()
        if not ch:
            return JsonSyntaxError(self.pos + 1, "Unexpected end-of-input", eof=True)
        return JsonSyntaxError(
            self.pos + 1, f"Unexpected character ('{ch}' (code {ord(ch)})): {expecting}"
        )

    def value(self) -> tuple[int, Any, Any]:
        ch = self._ws()
        col = self.pos + 1
        if ch == "{":
            return (col, *self._object())
        if ch == "[":
            return (col, *self._array())
        if ch == '"':
            return col, self._string(), None
        if not ch:
            raise self._unexpected("")
        word = re.match(r"[^\s,:\]\}\[\{\"]+", self.text[self.pos :])
        token = word.group(0) if word else ch
        if token in ("NaN", "Infinity", "-Infinity", "+Infinity"):
            raise JsonSyntaxError(
                col,
                f"Non-standard token '{token}': enable "
                "`JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS` to allow",
            )
        try:
            value, end = _DECODER.raw_decode(self.text, self.pos)
        except ValueError:
            raise JsonSyntaxError(
                col,
                f"Unrecognized token '{token}': was expecting (JSON String, Number, Array, "
                "Object or token 'null', 'true' or 'false')",
            ) from None
        self.pos = end
        return col, value, None

    def _string(self) -> str:
        try:
            text, self.pos = _DECODER.raw_decode(self.text, self.pos)
        except json.JSONDecodeError as exc:
            eof = "Unterminated" in exc.msg
            raise JsonSyntaxError(exc.pos + 1, exc.msg, eof=eof) from None
        return text

    def _object(self) -> tuple[dict[str, Any], dict[str, Any]]:
        self.pos += 1
        out: dict[str, Any] = {}
        cols: dict[str, Any] = {}
        if self._ws() == "}":
            self.pos += 1
            return out, cols
        while True:
            if self._ws() != '"':
                raise self._unexpected("was expecting double-quote to start field name")
            key = self._string()
            if key in out:
                raise JsonSyntaxError(self.pos, f"Duplicate field '{key}'")
            if self._ws() != ":":
                raise self._unexpected("was expecting a colon to separate field name and value")
            self.pos += 1
            col, out[key], sub = self.value()
            cols[key] = (col, sub)
            ch = self._ws()
            self.pos += 1
            if ch == "}":
                return out, cols
            if ch != ",":
                self.pos -= 1
                raise self._unexpected("was expecting comma to separate Object entries")

    def _array(self) -> tuple[list[Any], list[Any]]:
        self.pos += 1
        out: list[Any] = []
        cols: list[Any] = []
        if self._ws() == "]":
            self.pos += 1
            return out, cols
        while True:
            col, value, sub = self.value()
            out.append(value)
            cols.append((col, sub))
            ch = self._ws()
            self.pos += 1
            if ch == "]":
                return out, cols
            if ch != ",":
                self.pos -= 1
                raise self._unexpected("was expecting comma to separate Array entries")


_DECODER = json.JSONDecoder()


def read_json(text: str) -> tuple[Any, Any, Any]:
    """The first JSON value of ``text``: (value, its columns, what follows it: ``None`` when only
    whitespace does, else the next value, read the same way)."""
    reader = _Reader(text)
    _, value, cols = reader.value()
    if not reader._ws():
        return value, cols, None
    _, following, _ = reader.value()
    return value, cols, following


def token_name(value: Any) -> str:
    """The Jackson/XContent token that starts ``value`` (as named in Elasticsearch messages)."""
    if isinstance(value, dict):
        return "START_OBJECT"
    if isinstance(value, list):
        return "START_ARRAY"
    if isinstance(value, bool):
        return "VALUE_TRUE" if value else "VALUE_FALSE"
    if isinstance(value, int):
        return "VALUE_NUMBER_INT"
    if isinstance(value, float):
        return "VALUE_NUMBER_FLOAT"
    return "VALUE_NULL" if value is None else "VALUE_STRING"


VALID_ACTIONS = ("create", "delete", "index", "update")
ACTION_PARAMS = frozenset(
    {
        "_index",
        "_id",
        "routing",
        "op_type",
        "version",
        "version_type",
        "if_seq_no",
        "if_primary_term",
        "retry_on_conflict",
        "pipeline",
        "_source",
        "require_alias",
        "require_data_stream",
        "dynamic_templates",
        "list_executed_pipelines",
    }
)
UPDATE_FIELDS = frozenset({"doc", "upsert", "doc_as_upsert", "detect_noop", "_source"})


class EsError(Exception):
    """A whole-request error: the HTTP status and Elasticsearch's error object."""

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(error.get("reason", ""))
        self.status = status
        self.error = error


def es_error(status: int, kind: str, reason: str, **extra: Any) -> EsError:
    return EsError(status, {"type": kind, "reason": reason, **extra})


def _illegal(reason: str) -> EsError:
    return es_error(400, "illegal_argument_exception", reason)


def _syntax_error(exc: JsonSyntaxError) -> EsError:
    """A line that is not JSON, wrapped as Elasticsearch's JSON parser wraps Jackson's errors."""
    if exc.eof:
        cause = {"type": "json_e_o_f_exception", "reason": exc.message}
        return es_error(
            400,
            "x_content_e_o_f_exception",
            f"[1:{exc.col}] Unexpected end of file",
            caused_by=cause,
        )
    cause = {"type": "json_parse_exception", "reason": exc.message}
    return es_error(
        400, "x_content_parse_exception", f"[1:{exc.col}] {exc.message}", caused_by=cause
    )


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


@dataclass
class Action:
    """One action of a bulk body (``op`` is ``create`` for an index with ``op_type: create``)."""

    line: int
    op: str
    index: str | None
    id: str | None
    routing: str | None = None
    pipeline: str | None = None
    source: bytes | None = None  # index / create: the raw source line
    update: dict[str, Any] | None = None  # update: the parsed body


def _read_action(raw: bytes, line: int) -> tuple[str, dict[str, Any]]:
    try:
        value, _, following = read_json(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise _syntax_error(JsonSyntaxError(exc.start + 1, "Invalid UTF-8 start byte")) from None
    except JsonSyntaxError as exc:
        raise _syntax_error(exc) from None
    malformed = f"Malformed action/metadata line [{line}], expected"
    if not isinstance(value, dict):
        raise _illegal(f"{malformed} START_OBJECT but found [{token_name(value)}]")
    if not value:
        raise _illegal(f"{malformed} FIELD_NAME but found [END_OBJECT]")
    name, params = next(iter(value.items()))
    if name not in VALID_ACTIONS:
        raise _illegal(
            f"{malformed} field [create], [delete], [index] or [update] but found [{name}]"
        )
    if not isinstance(params, dict):
        raise _illegal(f"{malformed} START_OBJECT or END_OBJECT but found [{token_name(params)}]")
    if len(value) > 1 or following is not None:
        found = "FIELD_NAME" if len(value) > 1 else token_name(following)
        raise _illegal(f"{malformed} END_OBJECT but found [{found}]")
    for key, param in params.items():
        if key not in ACTION_PARAMS:
            raise _illegal(f"Action/metadata line [{line}] contains an unknown parameter [{key}]")
        if isinstance(param, (dict, list)) and key not in ("_source", "dynamic_templates"):
            raise _illegal(
                f"Malformed action/metadata line [{line}], expected a simple value for "
                f"field [{key}] but found [{token_name(param)}]"
            )
    return name, params


def _read_update(raw: bytes) -> dict[str, Any]:
    try:
        value, cols, _ = read_json(raw.decode("utf-8", errors="replace"))
    except JsonSyntaxError as exc:
        raise _syntax_error(exc) from None
    if not isinstance(value, dict):
        raise es_error(
            400,
            "x_content_parse_exception",
            f"[1:1] [UpdateRequest] Expected START_OBJECT but was: {token_name(value)}",
        )
    for key in value:
        if key in ("script", "scripted_upsert", "lang", "params"):
            raise es_error(500, "lookalike_not_modelled", "scripted updates are not modelled")
        if key not in UPDATE_FIELDS:
            raise es_error(
                400,
                "x_content_parse_exception",
                f"[1:{cols[key][0]}] [UpdateRequest] unknown field [{key}]",
            )
    return value


def parse_bulk(
    body: bytes, default_index: str | None, default_pipeline: str | None
) -> list[Action]:
    """The actions of a bulk body, or :class:`EsError` for what refuses the whole request."""
    if not body:
        raise es_error(400, "parse_exception", "request body is required")
    if not body.endswith(b"\n"):
        raise _illegal("The bulk request must be terminated by a newline [\\n]")
    lines = [raw[:-1] if raw.endswith(b"\r") else raw for raw in body.split(b"\n")[:-1]]
    actions: list[Action] = []
    at = 0
    while at < len(lines):
        raw, line = lines[at], at + 1
        at += 1
        if not raw.strip():
            continue  # an empty line is skipped
        name, params = _read_action(raw, line)
        op = name
        op_type = params.get("op_type")
        if name == "index" and op_type is not None and op_type != "index":
            if op_type != "create":
                raise _illegal(f"opType must be 'create' or 'index', found: [{op_type}]")
            op = "create"
        ident = params.get("_id")
        action = Action(
            line,
            op,
            params.get("_index", default_index),
            None if ident is None else _text(ident),
            routing=None if params.get("routing") is None else _text(params["routing"]),
            pipeline=params.get("pipeline", default_pipeline),
        )
        if name != "delete":
            if at >= len(lines):
                break  # an action without its source line is dropped, as Elasticsearch does
            source = lines[at]
            at += 1
            if name == "update":
                if "version" in params or "version_type" in params:
                    raise _illegal(
                        "Update requests do not support versioning. Please use "
                        "`if_seq_no` and `if_primary_term` instead"
                    )
                action.update = _read_update(source)
            else:
                action.source = source
        actions.append(action)
    _validate(actions)
    return actions


def _validate(actions: list[Action]) -> None:
    """``BulkRequest.validate``: every problem of every action, numbered, in one 400."""
    problems: list[str] = [] if actions else ["no requests added"]
    for action in actions:
        if action.source is not None and not action.source.strip():
            problems.append("source is missing")
        if action.index is None:
            problems.append("index is missing")
        if action.op in ("update", "delete") and action.id is None:
            problems.append("id is missing")
        if action.update is not None and "doc" not in action.update:
            problems.append("script or doc is missing")
        if action.id is not None and len(action.id.encode()) > 512:
            size = len(action.id.encode())
            problems.append(
                f"id [{action.id}] is too long, must be no longer than 512 bytes but was: {size}"
            )
    if problems:
        text = "".join(f"{n}: {p};" for n, p in enumerate(problems, 1))
        raise es_error(400, "action_request_validation_exception", f"Validation Failed: {text}")
