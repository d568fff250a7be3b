"""The tables of the embedded telemetry store: recent logs (full-text searchable) and spans.

Layout (every time is unix nanoseconds; ids are raw bytes, NULL when empty or all zero):

- ``telemetry_sources``: one row per distinct (resource, instrumentation scope), keyed by a
  hash of their protobuf encodings, so a resource's attributes are stored once, not once per
  record. ``last_time`` bounds the times of the rows referring to it (the last receive
  time + 1 h: times are clamped to that); once it is older than the retention cutoff, no
  log or span can refer to it any more and it is deleted.
- ``telemetry_logs``: the indexed columns of a log record, plus ``record``: the LogRecord
  protobuf with its body, trace id and span id cleared (they live elsewhere).
- ``telemetry_logs_fts``: a regular FTS5 table whose rowid is the log's id, holding the body
  as text (non-string bodies as JSON) and the values of the searchable attributes. The body
  is stored here only. A trigger deletes the FTS row with its log row.
- ``telemetry_spans``: the indexed columns of a span plus ``span``, its whole protobuf
  encoding (decoded only when read).

Logs and spans share one id sequence (the writer's insertion order), so "oldest first" is
well defined across both tables when the size cap makes room.
"""

from __future__ import annotations

TELEMETRY_SCHEMA = """
CREATE TABLE IF NOT EXISTS telemetry_sources (
    id INTEGER PRIMARY KEY,
    key BLOB NOT NULL UNIQUE,       -- blake2b-128 of the resource and scope encodings
    service TEXT NOT NULL,
    resource BLOB NOT NULL,         -- opentelemetry.proto.resource.v1.Resource
    scope BLOB NOT NULL,            -- opentelemetry.proto.common.v1.InstrumentationScope
    last_time INTEGER NOT NULL      -- no row referring to it has a later time
);
CREATE TABLE IF NOT EXISTS telemetry_logs (
    id INTEGER PRIMARY KEY,         -- insertion order, shared with telemetry_spans
    time INTEGER NOT NULL,          -- record time, else observed time, else receive time
    observed_time INTEGER NOT NULL,
    source_id INTEGER NOT NULL,
    service TEXT NOT NULL,
    severity_number INTEGER NOT NULL,  -- from severity_text when the record has none
    severity_text TEXT NOT NULL,
    trace_id BLOB,
    span_id BLOB,
    record BLOB NOT NULL            -- LogRecord without body, trace_id, span_id
);
CREATE INDEX IF NOT EXISTS telemetry_logs_by_time ON telemetry_logs (time);
CREATE INDEX IF NOT EXISTS telemetry_logs_by_service ON telemetry_logs (service, time);
CREATE INDEX IF NOT EXISTS telemetry_logs_by_trace ON telemetry_logs (trace_id)
    WHERE trace_id IS NOT NULL;
CREATE VIRTUAL TABLE IF NOT EXISTS telemetry_logs_fts USING fts5 (
    body, attributes, tokenize = 'unicode61 remove_diacritics 2', columnsize = 0
);
CREATE TRIGGER IF NOT EXISTS telemetry_logs_fts_delete AFTER DELETE ON telemetry_logs BEGIN
    DELETE FROM telemetry_logs_fts WHERE rowid = old.id;
END;
CREATE TABLE IF NOT EXISTS telemetry_spans (
    id INTEGER PRIMARY KEY,         -- insertion order, shared with telemetry_logs
    trace_id BLOB NOT NULL,
    span_id BLOB NOT NULL,
    parent_span_id BLOB,
    source_id INTEGER NOT NULL,
    service TEXT NOT NULL,
    name TEXT NOT NULL,
    start INTEGER NOT NULL,
    duration INTEGER NOT NULL,      -- nanoseconds, never negative
    status INTEGER NOT NULL,        -- StatusCode: 0 unset, 1 ok, 2 error
    span BLOB NOT NULL              -- opentelemetry.proto.trace.v1.Span
);
CREATE INDEX IF NOT EXISTS telemetry_spans_by_trace ON telemetry_spans (trace_id);
CREATE INDEX IF NOT EXISTS telemetry_spans_by_start ON telemetry_spans (start);
CREATE INDEX IF NOT EXISTS telemetry_spans_by_service ON telemetry_spans (service, start);
CREATE INDEX IF NOT EXISTS telemetry_spans_errors ON telemetry_spans (start) WHERE status = 2;
"""
