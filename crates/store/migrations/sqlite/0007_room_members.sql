-- Classes: a room's members, pending members (invited by e-mail before they
-- have an account) and invitation links. In step with ../postgres/0007_*.sql.
-- Depends on 0001 (users, rooms).

-- Rooms made before members existed were open to anyone signed in: they
-- stay so (`settings.access`, see vtp_store::RoomAccess); new rooms default
-- to members only.
UPDATE rooms SET settings = json_set(settings, '$.access', 'signed_in');

CREATE TABLE room_members (
    room_id     TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('student', 'co_teacher')),
    added_at    TEXT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_user ON room_members (user_id);

-- Added by e-mail before the address had an account: becomes a member when
-- an account with that address is created.
CREATE TABLE room_pending_members (
    room_id     TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    email       TEXT NOT NULL,               -- normalised like users.email
    role        TEXT NOT NULL CHECK (role IN ('student', 'co_teacher')),
    added_at    TEXT NOT NULL,
    PRIMARY KEY (room_id, email)
);
CREATE INDEX room_pending_members_email ON room_pending_members (email);

CREATE TABLE room_invitations (
    id          BLOB PRIMARY KEY NOT NULL,
    room_id     TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL UNIQUE,        -- SHA-256 of the link's token, hex
    role        TEXT NOT NULL CHECK (role IN ('student', 'co_teacher')),
    created_by  BLOB REFERENCES users (id) ON DELETE SET NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    max_uses    BIGINT,                      -- NULL: no limit
    uses        BIGINT NOT NULL DEFAULT 0,
    revoked_at  TEXT
);
CREATE INDEX room_invitations_room ON room_invitations (room_id);
