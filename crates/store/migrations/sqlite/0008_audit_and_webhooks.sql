-- The audit log and webhooks (issue 20). In step with ../postgres/0008_*.sql.
-- Depends on nothing earlier: the audit log names accounts without a
-- reference, so that it outlives them.

CREATE TABLE audit_events (
    id          BLOB PRIMARY KEY NOT NULL,
    at          TEXT NOT NULL,
    event       TEXT NOT NULL,        -- a stable name: auth.sign_in_failed, user.role_changed, ...
    actor_id    BLOB,                 -- who did it (no reference: kept after the account goes)
    actor       TEXT,                 -- their e-mail at the time, or what they typed
    target      TEXT,                 -- what it was done to: "user:<id>", "room:<id>", ...
    address     TEXT,                 -- the client address
    detail      TEXT                  -- JSON object, small
);
CREATE INDEX audit_events_at ON audit_events (at, id);
CREATE INDEX audit_events_event ON audit_events (event, at);

CREATE TABLE webhook_endpoints (
    id              BLOB PRIMARY KEY NOT NULL,
    url             TEXT NOT NULL,
    events          TEXT NOT NULL,    -- ",room.started,user.created," (commas around each, for LIKE)
    secret          TEXT NOT NULL,    -- the signing key; shown once
    enabled         BOOLEAN NOT NULL DEFAULT TRUE,
    disabled_reason TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

-- The outbox: one row per (event, endpoint), delivered in id order per endpoint.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id     BLOB NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        BLOB NOT NULL,
    event           TEXT NOT NULL,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL,    -- pending, delivered, failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    finished_at     TEXT
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, state, id);
