-- Two-factor sign-in (TOTP, RFC 6238) and its recovery codes. In step with
-- ../sqlite/0006_*.sql. Depends only on 0001 (users).

-- Whether the account signs in with a second factor (set when the first
-- code confirms the enrolment).
ALTER TABLE users ADD COLUMN two_factor BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE user_totp (
    user_id     UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret      TEXT NOT NULL,        -- base32; pending until users.two_factor
    last_step   BIGINT,               -- the last time step a code was accepted for (replay guard)
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE recovery_codes (
    id          UUID PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash   TEXT NOT NULL,        -- SHA-256 of the normalised code, hex
    used_at     TIMESTAMPTZ           -- single use
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);
