"""The error-tracking tables of the embedded store (schema version 3)."""

ERRORS_SCHEMA = """
CREATE TABLE IF NOT EXISTS error_groups (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    message TEXT NOT NULL,            -- normalised
    culprit TEXT NOT NULL,
    language TEXT NOT NULL,
    basis TEXT NOT NULL,              -- stack | message
    frames TEXT NOT NULL,             -- JSON list of {file, function, module, line}
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    count INTEGER NOT NULL,
    events INTEGER NOT NULL,
    services TEXT NOT NULL,           -- JSON {name: last seen}
    versions TEXT NOT NULL,
    environments TEXT NOT NULL,
    status TEXT NOT NULL,             -- unresolved | resolved | ignored
    status_changed_at REAL,
    status_changed_by TEXT,
    resolved_versions TEXT NOT NULL,  -- JSON list
    regressed_at REAL,
    regressions INTEGER NOT NULL,
    samples_taken INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS error_groups_by_last_seen ON error_groups (last_seen);
CREATE TABLE IF NOT EXISTS error_samples (
    id INTEGER PRIMARY KEY,           -- random: a sample completed later is written again
    group_id TEXT NOT NULL,
    time REAL NOT NULL,
    trace_id TEXT,
    span_id TEXT,
    service TEXT NOT NULL,
    version TEXT,
    environment TEXT,
    source TEXT NOT NULL,
    message TEXT NOT NULL,
    stacktrace TEXT NOT NULL,
    attributes TEXT NOT NULL          -- JSON
);
CREATE INDEX IF NOT EXISTS error_samples_by_group ON error_samples (group_id, time);
CREATE INDEX IF NOT EXISTS error_samples_by_trace ON error_samples (trace_id)
    WHERE trace_id IS NOT NULL;
"""
