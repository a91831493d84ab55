-- Live sessions, their participants (attendance) and chat. In step with
-- ../postgres/0002_*.sql.

CREATE TABLE live_sessions (
    id          BLOB PRIMARY KEY NOT NULL,
    room_id     TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    started_at  TEXT NOT NULL,
    ended_at    TEXT                              -- NULL while the session runs
);
CREATE INDEX live_sessions_room ON live_sessions (room_id, started_at);

CREATE TABLE participants (
    id            BLOB PRIMARY KEY NOT NULL,
    session_id    BLOB NOT NULL REFERENCES live_sessions (id) ON DELETE CASCADE,
    -- Kept when the account is deleted: attendance outlives accounts.
    user_id       BLOB REFERENCES users (id) ON DELETE SET NULL,
    peer_id       TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    room_role     TEXT NOT NULL CHECK (room_role IN ('host', 'presenter', 'participant')),
    joined_at     TEXT NOT NULL,
    left_at       TEXT                            -- NULL while present
);
CREATE INDEX participants_session ON participants (session_id, joined_at);
CREATE INDEX participants_user ON participants (user_id);

CREATE TABLE chat_messages (
    id            BLOB PRIMARY KEY NOT NULL,
    room_id       TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    session_id    BLOB NOT NULL REFERENCES live_sessions (id) ON DELETE CASCADE,
    user_id       BLOB REFERENCES users (id) ON DELETE SET NULL,
    peer_id       TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    body          TEXT NOT NULL,
    sent_at       TEXT NOT NULL
);
CREATE INDEX chat_messages_room ON chat_messages (room_id, sent_at);
