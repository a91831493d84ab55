-- Scheduled sessions, calendar feeds, temporary passwords. In step with
-- ../postgres/0010_*.sql. Depends on 0001 (users, rooms).

-- A room's schedule (JSON, see vtp_store::Schedule); NULL: none.
ALTER TABLE rooms ADD COLUMN schedule TEXT;

-- Set when an admin gave the account a temporary password: it signs in
-- only to change it (the token is scoped to that).
ALTER TABLE users ADD COLUMN password_must_change BOOLEAN NOT NULL DEFAULT FALSE;

-- A subscribe link to a room's .ics feed, issued to one user. The link
-- carries this id and an HMAC over it (server::auth::links); deleting or
-- revoking the row voids the link.
CREATE TABLE calendar_feeds (
    id          BLOB PRIMARY KEY NOT NULL,
    room_id     TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX calendar_feeds_room_user ON calendar_feeds (room_id, user_id);
