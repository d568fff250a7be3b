"""The Elasticsearch look-alike's dynamic mapping: how one document's fields are judged against
the types earlier documents of its target (data stream or index) fixed.

The first value of a field path fixes its type (``long``, ``float``, ``boolean``, ``keyword`` /
``text`` / ``match_only_text``, ``date``, ``object``); dotted keys are object paths (``"a.b": 1``
is ``{"a": {"b": 1}}``); coercible values pass; an incompatible one refuses the document with a
``document_parsing_exception`` (400). Types are committed only for accepted documents. What the
target's template decides (``ignore_malformed``, strings as keywords, date detection, the
``constant_keyword`` ``data_stream.*`` fields, the required ``@timestamp``) is its
:class:`Flavor`. Each rule and its source is in ``tests/support/REAL_ELASTICSEARCH.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_ISO_DATE = re.compile(
    r"\d{4}(-\d{2}(-\d{2}(T\d{2}(:\d{2}(:\d{2}([.,]\d{1,9})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?)?)?"
)
_SLASH_DATE = re.compile(r"\d{4}/\d{2}/\d{2}( \d{2}:\d{2}:\d{2})? [+-]\d{4}")
DATE_FORMAT = "strict_date_optional_time||epoch_millis"


def java_text(value: Any) -> str:
    """``value`` as Java's ``toString`` shows it in Elasticsearch's "Preview of field's value"."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={java_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(java_text(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


class DocumentRefused(Exception):
    """The document is refused; ``error`` is Elasticsearch's error object for the item."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["reason"])
        self.error = error


def parsing_error(col: int | None, reason: str, cause: dict[str, Any] | None) -> DocumentRefused:
    where = f"[1:{col}] " if col is not None else ""
    error: dict[str, Any] = {"type": "document_parsing_exception", "reason": where + reason}
    if cause is not None:
        error["caused_by"] = cause
    return DocumentRefused(error)


@dataclass(frozen=True)
class Flavor:
    """What a target's index template decides about dynamic mapping."""

    strings: str  # the type of a new string field
    date_detection: bool
    ignore_malformed: bool
    data_stream: bool
    constants: tuple[tuple[str, str | None], ...] = ()  # constant_keyword fields (fixed value)
    dynamic: bool = True  # False: unmapped fields stay in _source, unjudged (``dynamic: false``)
    containers: tuple[str, ...] = ()  # dynamic objects whose keys are leaves (no subobjects)
    fixed: tuple[tuple[str, str], ...] = ()  # fields the template maps


_DS_FIELDS = ("data_stream.dataset", None), ("data_stream.namespace", None)
LOGS = Flavor("keyword", False, True, True, (("data_stream.type", "logs"), *_DS_FIELDS))
METRICS = Flavor("text", True, True, True, (("data_stream.type", "metrics"), *_DS_FIELDS))
OTHER_DATA_STREAM = Flavor("text", True, False, True)
INDEX = Flavor("text", True, False, False)
_OTEL_FIXED = tuple(
    (name, kind)
    for kinds, names in {
        "object": "resource scope body",
        "keyword": "severity_text trace_id span_id scope.name scope.version scope.schema_url "
        "resource.schema_url",
        "long": "dropped_attributes_count scope.dropped_attributes_count "
        "resource.dropped_attributes_count",
        "byte": "severity_number trace_flags",
        "date": "observed_timestamp",
        "match_only_text": "body.text body_text",
        "flattened": "body.structured body_structured",
    }.items()
    for kind, name in ((kinds, n) for n in names.split())
)


def _otel(data_type: str, ignore_malformed: bool) -> Flavor:
    """The OTel-native templates (otel@mappings): ``dynamic: false`` but for the attributes."""
    constants = (("data_stream.type", data_type), *_DS_FIELDS)
    containers = ("attributes", "scope.attributes", "resource.attributes")
    return Flavor(
        "keyword", False, ignore_malformed, True, constants, False, containers, _OTEL_FIXED
    )


OTEL_LOGS, OTEL_METRICS, OTEL_TRACES = (
    _otel("logs", True),
    _otel("metrics", True),
    _otel("traces", False),
)
_LENIENT = ("long", "byte", "float", "boolean", "date")  # types that honour ignore_malformed


def _iso_date(text: str) -> bool:
    return bool(_ISO_DATE.fullmatch(text) or re.fullmatch(r"-?\d+(\.\d+)?", text))


def _scalar_problem(kind: str, value: Any, col: int) -> dict[str, Any] | None:
    """Why the scalar ``value`` cannot go into a ``kind`` field (the ``caused_by``), or None."""
    if kind in ("keyword", "text", "match_only_text", "constant_keyword", "flattened"):
        return None
    token = "VALUE_TRUE" if value is True else "VALUE_FALSE" if value is False else None
    if kind in ("long", "byte", "float"):
        if token:
            return {
                "type": "x_content_parse_exception",
                "reason": f"[1:{col}] Current token "
                f"({token}) not numeric, can not use numeric value accessors",
            }
        if isinstance(value, str):
            if not _NUMBER.fullmatch(value):
                return {"type": "number_format_exception", "reason": f'For input string: "{value}"'}
            number = Decimal(value)
        else:
            number = Decimal(value)
        low, high = (LONG_MIN, LONG_MAX) if kind == "long" else (-128, 127)
        if kind != "float" and not low <= int(number) <= high:
            return {
                "type": "illegal_argument_exception",
                "reason": f"Value [{value}] is out of range for a {kind}",
            }
        return None
    if kind == "boolean":
        if isinstance(value, bool) or value in ("true", "false", ""):
            return None
        if isinstance(value, str):
            return {
                "type": "illegal_argument_exception",
                "reason": f"Failed to parse value [{value}] as only [true] or [false] are allowed.",
            }
        number_token = "VALUE_NUMBER_INT" if isinstance(value, int) else "VALUE_NUMBER_FLOAT"
        return {
            "type": "x_content_parse_exception",
            "reason": f"[1:{col}] Current token ({number_token}) not of boolean type",
        }
    # date
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return None
    if isinstance(value, str) and _iso_date(value):
        return None
    return {
        "type": "illegal_argument_exception",
        "reason": f"failed to parse date field [{java_text(value)}] with format [{DATE_FORMAT}]",
        "caused_by": {
            "type": "date_time_parse_exception",
            "reason": "Failed to parse with all enclosed parsers",
        },
    }


def _object_cause(kind: str, col: int) -> dict[str, Any]:
    if kind in ("long", "byte", "float"):
        reason = "not numeric, can not use numeric value accessors"
    elif kind == "boolean":
        reason = "not of boolean type"
    else:
        return {
            "type": "illegal_state_exception",
            "reason": f"Can't get text on a START_OBJECT at 1:{col}",
        }
    return {
        "type": "x_content_parse_exception",
        "reason": f"[1:{col}] Current token (START_OBJECT) {reason}",
    }


def _key_parts(key: str, path: tuple[str, ...], col: int) -> list[str]:
    """A field name as the object path Elasticsearch expands it to (``a.b`` is ``a`` → ``b``)."""

    def refuse(message: str) -> DocumentRefused:
        cause = {"type": "illegal_argument_exception", "reason": message}
        return parsing_error(col, f"failed to parse: {message}", cause)

    if key == "":
        raise refuse("Field name cannot be an empty string")
    if "." not in key:
        if not key.strip():
            raise refuse(f"Field name cannot contain only whitespace: [{'.'.join((*path, key))}]")
        return [key]
    if not key.strip("."):
        raise refuse(f"field name cannot contain only dots: [{key}]")
    parts = re.split(r"\.", key)
    while parts and parts[-1] == "":  # Java's String.split drops trailing empty strings
        parts.pop()
    for part in parts:
        if part == "":
            raise refuse(f"field name cannot contain only whitespace: ['{key}']")
        if not part.strip():
            ambiguous = "field name starting or ending with a [.] makes object resolution ambiguous"
            raise refuse(f"{ambiguous}: [{key}]")
    return parts


class Mapping:
    """The field types of one target, fixed by the first value of each path."""

    def __init__(self, flavor: Flavor) -> None:
        self.flavor = flavor
        self.types: dict[str, str] = {}
        self.constants: dict[str, str | None] = dict(flavor.constants)
        if flavor.data_stream:
            self.types["@timestamp"] = "date"
        for name, _ in flavor.constants:
            self.types["data_stream"] = "object"
            self.types[name] = "constant_keyword"
        self.types.update(flavor.fixed)
        self.types.update((name, "object") for name in flavor.containers)

    def index(self, source: Any, cols: Any, doc_id: str, end_col: int) -> None:
        """Judge ``source``; on success fix the types of its new fields. Raises
        :class:`DocumentRefused` as Elasticsearch refuses the document."""
        if not isinstance(source, dict):
            raise parsing_error(
                None, "failed to parse: Malformed content, must start with an object", None
            )
        work = _Work(self, doc_id)
        work.walk_object((), source, cols, self.flavor.dynamic)
        if self.flavor.data_stream:
            stamp = source.get("@timestamp")
            many = isinstance(stamp, list) and len([v for v in stamp if v is not None]) > 1
            if stamp is None or stamp == [] or many:
                what = "encountered multiple values" if many else "is missing"
                message = f"data stream timestamp field [@timestamp] {what}"
                cause = {"type": "illegal_argument_exception", "reason": message}
                raise parsing_error(end_col, f"failed to parse: {message}", cause)
        self.types.update(work.types)
        self.constants.update(work.constants)


class _Work:
    """One document's walk: the types it adds, kept apart until the document is accepted."""

    def __init__(self, mapping: Mapping, doc_id: str) -> None:
        self.mapping = mapping
        self.doc_id = doc_id
        self.types: dict[str, str] = {}
        self.constants: dict[str, str | None] = {}

    def kind(self, path: str) -> str | None:
        return self.types.get(path) or self.mapping.types.get(path)

    def walk_object(
        self, path: tuple[str, ...], obj: dict[str, Any], cols: dict[str, Any], dynamic: bool
    ) -> None:
        flat = ".".join(path) in self.mapping.flavor.containers
        for key, value in obj.items():
            col, sub = cols[key]
            parts = [key] if flat and key.strip() else _key_parts(key, path, col)
            # a dotted key is the nested object {"a": {"b": value}}
            for depth, name in enumerate(parts[:-1]):
                inner = (*path, *parts[: depth + 1])
                kind = self.kind(".".join(inner))
                nested = {".".join(parts[depth + 1 :]): value}
                if kind is None and not dynamic:
                    break  # dynamic: false: an unmapped object is kept in _source only
                if kind is None:
                    self.types[".".join(inner)] = "object"
                elif kind != "object":
                    self.field(inner, name, nested, col, None, dynamic)
                    break
            else:
                self.field((*path, *parts), parts[-1], value, col, sub, dynamic)

    def field(
        self, path: tuple[str, ...], leaf: str, value: Any, col: int, sub: Any, dynamic: bool
    ) -> None:
        name = ".".join(path)
        if value is None:
            return
        if isinstance(value, list):
            for i, item in enumerate(value):
                item_col, item_sub = sub[i] if sub else (col, None)
                self.field(path, leaf, item, item_col, item_sub, dynamic)
            return
        kind = self.kind(name)
        if kind is None and not dynamic:
            return
        if kind is None:
            kind = self.new_kind(path, value)
            self.types[name] = kind
        if kind == "flattened":
            return
        if kind == "object":
            if not isinstance(value, dict):
                raise parsing_error(
                    col,
                    f"object mapping for [{name}] tried to parse field "
                    f"[{leaf}] as object, but found a concrete value",
                    None,
                )
            inner = sub or {k: (col, None) for k in value}
            self.walk_object(path, value, inner, dynamic or name in self.mapping.flavor.containers)
            return
        if isinstance(value, dict):
            self.refuse(name, kind, value, col, _object_cause(kind, col))
        cause = _scalar_problem(kind, value, col)
        lenient = self.mapping.flavor.ignore_malformed and name != "@timestamp"
        if cause is not None and not (lenient and kind in _LENIENT):
            self.refuse(name, kind, value, col, cause)
        if kind == "constant_keyword":
            fixed = self.constants.get(name, self.mapping.constants.get(name))
            text = java_text(value)
            if fixed is None:
                self.constants[name] = text
            elif fixed != text:
                self.refuse(
                    name,
                    kind,
                    value,
                    col,
                    {
                        "type": "illegal_argument_exception",
                        "reason": f"[constant_keyword] field [{name}] only accepts values that "
                        f"are equal to the value defined in the mappings [{fixed}], but got "
                        f"[{text}]",
                    },
                )

    def new_kind(self, path: tuple[str, ...], value: Any) -> str:
        """The type dynamic mapping gives a new field for its first value."""
        flavor = self.mapping.flavor
        if isinstance(value, dict):  # in OTel attributes: the complex_attributes template
            return "flattened" if ".".join(path[:-1]) in flavor.containers else "object"
        if isinstance(value, bool):
            return "boolean"
        if isinstance(value, int):
            return "long"
        if isinstance(value, float):
            return "float"
        if flavor.strings == "keyword":  # ecs@mappings
            return "match_only_text" if path[-1] == "message" else "keyword"
        text = str(value)
        if flavor.date_detection and (_ISO_DATE.fullmatch(text) or _SLASH_DATE.fullmatch(text)):
            return "date"
        return "text"

    def refuse(self, name: str, kind: str, value: Any, col: int, cause: dict[str, Any]) -> None:
        raise parsing_error(
            col,
            f"failed to parse field [{name}] of type [{kind}] in document with id "
            f"'{self.doc_id}'. Preview of field's value: '{java_text(value)}'",
            cause,
        )
