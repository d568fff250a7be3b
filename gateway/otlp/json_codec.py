"""OTLP/JSON encoding and decoding (the OTLP specification's JSON mapping of the protobufs).

OTLP/JSON is protobuf's canonical JSON mapping with these differences:

* ``traceId`` / ``spanId`` / ``parentSpanId`` of spans, span links, log records and metric
  exemplars are case-insensitive **hex** strings, not base64;
* enums are integers (``"kind": 2``) and keys are lowerCamelCase;
* unknown fields are ignored; int64 values are decimal strings (numbers are accepted too).

Decoding is :mod:`gateway.otlp.json_decode` (about ten times faster than ``json_format``).
Encoding is ``google.protobuf.json_format`` followed by a walk over the known id paths that
turns base64 into hex. It is a structured walk, not a generic recursion, so a ``traceId`` key
elsewhere (an attribute value, say) is left alone.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2 as _error_details_pb2  # noqa: F401  (Any types)
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.otlp.batch import ExportRequest, Signal
from gateway.otlp.json_decode import INVALID_ID, JsonShapeError, parse, prepare

__all__ = ["INVALID_ID", "decode_json", "encode_json"]

_ID_KEYS = (("traceId", "trace_id"), ("spanId", "span_id"))
_SPAN_ID_KEYS = (*_ID_KEYS, ("parentSpanId", "parent_span_id"))
_POINT_KINDS = (
    ("gauge",),
    ("sum",),
    ("histogram",),
    ("exponentialHistogram", "exponential_histogram"),
    ("summary",),
)
# The Collector's JSON unmarshaler also accepts the original (snake_case) field names, and so
# does protobuf's parser; the walker looks for both spellings so that ids are never read as
# base64 by accident.
_RESOURCE_SPANS = ("resourceSpans", "resource_spans")
_SCOPE_SPANS = ("scopeSpans", "scope_spans")
_RESOURCE_LOGS = ("resourceLogs", "resource_logs")
_SCOPE_LOGS = ("scopeLogs", "scope_logs")
_LOG_RECORDS = ("logRecords", "log_records")
_RESOURCE_METRICS = ("resourceMetrics", "resource_metrics")
_SCOPE_METRICS = ("scopeMetrics", "scope_metrics")
_DATA_POINTS = ("dataPoints", "data_points")


def _b64_to_hex(value: Any) -> Any:
    """base64 text printed by protobuf -> lower-case hex."""
    try:
        return base64.b64decode(value).hex()
    except (binascii.Error, TypeError, ValueError):  # not produced by MessageToDict
        return value


def _children(obj: Any, keys: tuple[str, ...]) -> list[Any]:
    """The list under the first of ``keys`` present in ``obj`` (a wrong shape gives [];
    protobuf's parser reports it afterwards)."""
    if not isinstance(obj, dict):
        return []
    for key in keys:
        value = obj.get(key)
        if value is not None:
            return value if isinstance(value, list) else []
    return []


def _convert_ids(obj: Any, key_sets: tuple[tuple[str, ...], ...], convert: Any) -> None:
    if not isinstance(obj, dict):
        return
    for keys in key_sets:
        for key in keys:
            if key in obj:
                obj[key] = convert(obj[key])


def _walk(signal: Signal, doc: dict[str, Any], convert: Any) -> None:
    """Apply ``convert`` to every id value of an Export*ServiceRequest in dict form."""
    if signal is Signal.TRACES:
        for rs in _children(doc, _RESOURCE_SPANS):
            for ss in _children(rs, _SCOPE_SPANS):
                for span in _children(ss, ("spans",)):
                    _convert_ids(span, _SPAN_ID_KEYS, convert)
                    for link in _children(span, ("links",)):
                        _convert_ids(link, _ID_KEYS, convert)
    elif signal is Signal.LOGS:
        for rl in _children(doc, _RESOURCE_LOGS):
            for sl in _children(rl, _SCOPE_LOGS):
                for record in _children(sl, _LOG_RECORDS):
                    _convert_ids(record, _ID_KEYS, convert)
    else:
        for rm in _children(doc, _RESOURCE_METRICS):
            for sm in _children(rm, _SCOPE_METRICS):
                for metric in _children(sm, ("metrics",)):
                    if not isinstance(metric, dict):
                        continue
                    for kind_keys in _POINT_KINDS:
                        for kind in kind_keys:
                            for point in _children(metric.get(kind), _DATA_POINTS):
                                for exemplar in _children(point, ("exemplars",)):
                                    _convert_ids(exemplar, _ID_KEYS, convert)


def decode_json(signal: Signal, body: bytes) -> ExportRequest:
    """Parse an OTLP/JSON ``Export*ServiceRequest`` of ``signal``.

    Raises :class:`ValueError` (with a message fit for a 400 answer) for malformed JSON or a
    document that does not have the shape of the request.
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"malformed JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(
            f"OTLP/JSON {signal.value} request must be a JSON object, not {type(doc).__name__}"
        )
    try:
        return parse(doc, signal.request_type)  # type: ignore[return-value]
    except JsonShapeError as exc:
        raise ValueError(f"invalid OTLP/JSON {signal.value} request: {exc}") from None


prepare([signal.request_type for signal in Signal])

_REQUEST_SIGNALS: dict[type[Message], Signal] = {
    ExportTraceServiceRequest: Signal.TRACES,
    ExportMetricsServiceRequest: Signal.METRICS,
    ExportLogsServiceRequest: Signal.LOGS,
}


def encode_json(message: Message) -> bytes:
    """OTLP/JSON of ``message``: an Export*ServiceRequest (ids as hex), a response or any
    other message such as ``google.rpc.Status`` (canonical JSON, integer enums)."""
    doc = json_format.MessageToDict(message, use_integers_for_enums=True)
    signal = _REQUEST_SIGNALS.get(type(message))
    if signal is not None:
        _walk(signal, doc, _b64_to_hex)
    return orjson.dumps(doc)
