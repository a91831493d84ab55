-- Accounts, refresh tokens and rooms. Kept in step with ../sqlite/0001_*.sql:
-- same tables, same columns, same constraints; only the type names differ.

CREATE TABLE users (
    id            UUID PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,          -- stored normalised (trimmed, lower-case)
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,                 -- argon2id PHC string
    role          TEXT NOT NULL CHECK (role IN ('admin', 'instructor', 'student')),
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    token_epoch   BIGINT NOT NULL DEFAULT 0,     -- bumped to invalidate every access token at once
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE refresh_tokens (
    id          UUID PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id   UUID NOT NULL,                   -- all tokens descended from one login
    token_hash  TEXT NOT NULL UNIQUE,            -- SHA-256 of the opaque token, hex
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ,                     -- set when rotated; a second use is a theft signal
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE rooms (
    id          TEXT PRIMARY KEY,                -- a UUID or a short slug chosen by the owner
    title       TEXT NOT NULL,
    owner_id    UUID NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    status      TEXT NOT NULL CHECK (status IN ('open', 'live', 'closed')),
    settings    JSONB NOT NULL,                  -- see vtp_store::RoomSettings
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX rooms_owner ON rooms (owner_id);
CREATE INDEX rooms_created ON rooms (created_at);
