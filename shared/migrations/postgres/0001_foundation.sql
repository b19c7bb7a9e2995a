-- A single revision counter: every write that changes what the data plane serves takes the
-- next value in its transaction (the row lock orders writers), so a reader that has seen
-- revision N can fetch exactly what changed after it.
CREATE TABLE edge_revision (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    rev BIGINT  NOT NULL
);
INSERT INTO edge_revision (id, rev) VALUES (1, 0);

CREATE TABLE nas (
    id                            BIGSERIAL PRIMARY KEY,
    name                          TEXT    NOT NULL UNIQUE,
    address                       TEXT    NOT NULL,
    secret                        TEXT    NOT NULL,
    vendor                        TEXT    NOT NULL DEFAULT 'generic',
    coa_port                      INTEGER NOT NULL DEFAULT 3799,
    require_message_authenticator BOOLEAN NOT NULL DEFAULT TRUE,
    rate_limit_per_second         INTEGER NOT NULL DEFAULT 0,
    rev                           BIGINT  NOT NULL,
    created_at                    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE plans (
    id                       BIGSERIAL PRIMARY KEY,
    name                     TEXT    NOT NULL UNIQUE,
    reply_attributes         TEXT    NOT NULL DEFAULT '',
    session_timeout_seconds  INTEGER,
    interim_interval_seconds INTEGER,
    rev                      BIGINT  NOT NULL,
    created_at               TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE subscribers (
    id                 BIGSERIAL PRIMARY KEY,
    username           TEXT   NOT NULL UNIQUE,
    password           TEXT   NOT NULL,
    plan_id            BIGINT REFERENCES plans (id) ON DELETE RESTRICT,
    status             TEXT   NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    static_ipv4        TEXT,
    calling_station_id TEXT,
    rev                BIGINT NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX subscribers_rev ON subscribers (rev);
CREATE INDEX subscribers_plan ON subscribers (plan_id);

-- Rows removed since a revision, so that running servers drop them from memory.
CREATE TABLE deletions (
    rev  BIGINT NOT NULL,
    kind TEXT   NOT NULL,
    key  TEXT   NOT NULL
);
CREATE INDEX deletions_rev ON deletions (rev);
