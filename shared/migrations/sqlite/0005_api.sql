-- The REST API: bearer tokens (stored as SHA-256 of the token, never the token) and the
-- audit log of every write made through it.
CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT   NOT NULL UNIQUE,
    -- `read` or `write` (write includes read).
    scope       TEXT   NOT NULL CHECK (scope IN ('read', 'write')),
    token_hash  TEXT   NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at_us       BIGINT NOT NULL,
    -- `token:NAME` or `jwt:SUBJECT`.
    actor       TEXT   NOT NULL,
    method      TEXT   NOT NULL,
    path        TEXT   NOT NULL,
    -- The HTTP status the write was answered with.
    status      INTEGER NOT NULL,
    request_id  TEXT   NOT NULL
);

-- Sessions searched by the caller's station (MAC) for support desks.
CREATE INDEX sessions_calling_station_start ON sessions (calling_station_id, acct_start_time);
