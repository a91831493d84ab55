-- Accounts, refresh tokens and rooms. Kept in step with ../postgres/0001_*.sql:
-- same tables, same columns, same constraints; only the type names differ.

CREATE TABLE users (
    id            BLOB PRIMARY KEY NOT NULL,
    email         TEXT NOT NULL UNIQUE,          -- stored normalised (trimmed, lower-case)
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,                 -- argon2id PHC string
    role          TEXT NOT NULL CHECK (role IN ('admin', 'instructor', 'student')),
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    token_epoch   BIGINT NOT NULL DEFAULT 0,     -- bumped to invalidate every access token at once
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE refresh_tokens (
    id          BLOB PRIMARY KEY NOT NULL,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id   BLOB NOT NULL,                   -- all tokens descended from one login
    token_hash  TEXT NOT NULL UNIQUE,            -- SHA-256 of the opaque token, hex
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,                            -- set when rotated; a second use is a theft signal
    revoked_at  TEXT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE rooms (
    id          TEXT PRIMARY KEY NOT NULL,       -- a UUID or a short slug chosen by the owner
    title       TEXT NOT NULL,
    owner_id    BLOB NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    status      TEXT NOT NULL CHECK (status IN ('open', 'live', 'closed')),
    settings    TEXT NOT NULL,                   -- JSON, see vtp_store::RoomSettings
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX rooms_owner ON rooms (owner_id);
CREATE INDEX rooms_created ON rooms (created_at);
