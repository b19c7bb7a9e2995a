-- Address pools, the blocks instances claim from them, and the leases they hand out.
--
-- A pool's address space is numbered in slots: slot i is the i-th address (IPv4) or the i-th
-- prefix of `prefix_len` (IPv6) across its ranges in order. Blocks are runs of `block_size`
-- slots; an instance allocates only inside blocks it owns (see docs/ipam.md).
CREATE TABLE ip_pools (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT     NOT NULL UNIQUE,
    family           SMALLINT NOT NULL CHECK (family IN (4, 6)),
    -- CIDRs and first-last ranges, one per line.
    ranges           TEXT     NOT NULL,
    -- Addresses (or IPv6 prefixes) never handed out: excluded and reserved ones, one per line.
    excludes         TEXT     NOT NULL DEFAULT '',
    prefix_len       SMALLINT NOT NULL,
    block_size       INTEGER  NOT NULL,
    reply_attributes TEXT     NOT NULL DEFAULT '',
    -- Tried when this pool has nothing free.
    next_pool        TEXT,
    rev              BIGINT   NOT NULL,
    created_at       TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- Which instance allocates inside which block. NULL: nobody (free to claim).
CREATE TABLE ip_blocks (
    pool_id    BIGINT  NOT NULL REFERENCES ip_pools (id) ON DELETE CASCADE,
    block_no   INTEGER NOT NULL,
    owner      TEXT,
    claimed_at BIGINT,
    PRIMARY KEY (pool_id, block_no)
);
CREATE INDEX ip_blocks_owner ON ip_blocks (owner);

-- Instances that own blocks. An instance renews `heartbeat` (Unix seconds); one silent for
-- longer than its peers' dead_after is gone, and its blocks are claimable once the journal
-- rows its `incarnation` (the accounting writer id) left are folded.
CREATE TABLE ip_instances (
    name        TEXT   PRIMARY KEY,
    incarnation BIGINT NOT NULL,
    heartbeat   BIGINT NOT NULL
);

-- The newest word on each slot that has been handed out. Written by the journal's fold
-- (no foreign key: a fold must not fail because a pool was removed meanwhile).
CREATE TABLE ip_leases (
    pool_id        BIGINT NOT NULL,
    slot           BIGINT NOT NULL,
    address        TEXT   NOT NULL,
    username       TEXT   NOT NULL,
    state          TEXT   NOT NULL CHECK (state IN ('offered', 'bound', 'released')),
    acct_unique_id TEXT,
    -- Offered: until the session must start. Bound: until the session is stale. Released:
    -- until the address stops being kept for the same subscriber.
    expires_at     BIGINT NOT NULL,
    -- Microseconds; a change applies only over an older one.
    updated_us     BIGINT NOT NULL,
    instance       TEXT   NOT NULL,
    PRIMARY KEY (pool_id, slot)
);
CREATE INDEX ip_leases_address ON ip_leases (address);
CREATE INDEX ip_leases_username ON ip_leases (username);
CREATE INDEX ip_leases_unique_id ON ip_leases (acct_unique_id);
CREATE INDEX ip_leases_updated ON ip_leases (updated_us);

ALTER TABLE plans ADD COLUMN pool_id BIGINT REFERENCES ip_pools (id) ON DELETE RESTRICT;
ALTER TABLE plans ADD COLUMN ipv6_pool_id BIGINT REFERENCES ip_pools (id) ON DELETE RESTRICT;
ALTER TABLE plans ADD COLUMN delegated_pool_id BIGINT REFERENCES ip_pools (id) ON DELETE RESTRICT;

CREATE INDEX subscribers_static_ipv4 ON subscribers (static_ipv4) WHERE static_ipv4 IS NOT NULL;
