-- Recordings of live sessions: one row per recording, its files live under
-- <data-dir>/recordings/<id>/. In step with ../sqlite/0003_*.sql.

CREATE TABLE recordings (
    id           UUID PRIMARY KEY,
    -- RESTRICT: deleting a room must not orphan its files; delete its recordings first.
    room_id      TEXT NOT NULL REFERENCES rooms (id) ON DELETE RESTRICT,
    session_id   UUID NOT NULL REFERENCES live_sessions (id) ON DELETE RESTRICT,
    -- NULL when the room records automatically, or once the account is deleted.
    started_by   UUID REFERENCES users (id) ON DELETE SET NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    stopped_at   TIMESTAMPTZ,                    -- NULL while recording
    state        TEXT NOT NULL CHECK (state IN ('recording', 'finalizing', 'ready', 'failed')),
    bytes        BIGINT NOT NULL DEFAULT 0,      -- all files together
    duration_ms  BIGINT NOT NULL DEFAULT 0,
    manifest     JSONB,                          -- vtp_recording::Manifest; NULL until first written
    error        TEXT,                           -- why it failed, for operators
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX recordings_room ON recordings (room_id, started_at);
CREATE INDEX recordings_session ON recordings (session_id);
CREATE INDEX recordings_state ON recordings (state);
-- At most one recording running per session: two hosts pressing "record" at
-- once get one recording, the second insert a conflict.
CREATE UNIQUE INDEX recordings_one_running ON recordings (session_id) WHERE state = 'recording';
