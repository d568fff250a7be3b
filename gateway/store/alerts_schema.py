"""The alerting tables of the embedded store (schema version 2)."""

ALERTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    service TEXT,
    severity TEXT NOT NULL,
    state TEXT NOT NULL,          -- pending, firing, acknowledged, resolved
    labels TEXT NOT NULL,         -- JSON
    annotations TEXT NOT NULL,    -- JSON
    value REAL,
    started_at REAL NOT NULL,
    last_held_at REAL NOT NULL,
    fired_at REAL,
    resolved_at REAL,
    acknowledged_by TEXT,
    acknowledged_at REAL,
    ack_comment TEXT,
    silenced_by TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS alerts_by_start ON alerts (started_at);
CREATE INDEX IF NOT EXISTS alerts_open ON alerts (state) WHERE state != 'resolved';
CREATE TABLE IF NOT EXISTS alert_events (
    alert_id TEXT NOT NULL,
    at REAL NOT NULL,
    kind TEXT NOT NULL,           -- pending, firing, acknowledged, resolved, notification, ...
    detail TEXT NOT NULL          -- JSON
);
CREATE INDEX IF NOT EXISTS alert_events_by_alert ON alert_events (alert_id, at);
CREATE TABLE IF NOT EXISTS alert_groups (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL           -- JSON (gateway.alerting.dispatch.Group)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY,
    matchers TEXT NOT NULL,       -- JSON, Alertmanager's v2 shape
    starts_at REAL NOT NULL,
    ends_at REAL NOT NULL,
    created_by TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS notification_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver TEXT NOT NULL,
    integration TEXT NOT NULL,
    group_key TEXT NOT NULL,
    payload TEXT NOT NULL,        -- JSON (gateway.alerting.alerts.notification_to_json)
    alert_ids TEXT NOT NULL,      -- JSON list
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    delivered_at REAL,
    failed_at REAL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_waiting ON notification_outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
"""
