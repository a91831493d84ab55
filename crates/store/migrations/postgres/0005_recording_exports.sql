-- Exports of recordings to one composed MP4 (`vtp recording export`, the
-- `/recordings/{id}/exports` routes). Files live under
-- <data-dir>/exports/<recording id>/<export id>.mp4. In step with
-- ../sqlite/0005_*.sql. Depends only on 0003 (recordings).

CREATE TABLE recording_exports (
    id            UUID PRIMARY KEY,
    -- CASCADE: deleting a recording removes its exports (the server removes the files).
    recording_id  UUID NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
    layout        TEXT NOT NULL CHECK (layout IN ('grid', 'speaker', 'audio')),
    state         TEXT NOT NULL CHECK (state IN ('queued', 'running', 'ready', 'failed')),
    progress      DOUBLE PRECISION NOT NULL DEFAULT 0,   -- 0..1 while running, 1 when ready
    requested_by  UUID REFERENCES users (id) ON DELETE SET NULL,
    bytes         BIGINT NOT NULL DEFAULT 0,             -- size of the finished file
    error         TEXT,                                  -- why it failed, in words for users
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX recording_exports_recording ON recording_exports (recording_id, created_at);
CREATE INDEX recording_exports_state ON recording_exports (state, created_at);
-- One export per (recording, layout) at a time: a second request while one
-- waits or runs is a conflict.
CREATE UNIQUE INDEX recording_exports_one_active ON recording_exports (recording_id, layout)
    WHERE state IN ('queued', 'running');
