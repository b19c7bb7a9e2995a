-- A lease change stored by an instance that does not own the slot's block (an accounting
-- report that reached a peer, an operator's release) leaves a notice for the block's owner,
-- written in the fold's transaction. The owner takes the lease into its memory and deletes the
-- notice. This replaces a scan of every lease changed since the owner's start.
CREATE TABLE ip_lease_notices (
    owner   TEXT   NOT NULL,
    pool_id BIGINT NOT NULL,
    slot    BIGINT NOT NULL,
    PRIMARY KEY (owner, pool_id, slot)
);
DROP INDEX ip_leases_updated;
