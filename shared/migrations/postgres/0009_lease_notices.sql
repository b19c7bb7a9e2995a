-- A lease change stored by an instance that does not own the slot's block (an accounting
-- report that reached a peer, an operator's release) leaves a notice for the block's owner,
-- written in the fold's transaction. The owner takes the lease into its memory and deletes the
-- notice. This replaces a scan of every lease changed since the owner's start (through the
-- index on `updated_us`): that index also kept each lease update from being a HOT update.
CREATE TABLE ip_lease_notices (
    owner   TEXT   NOT NULL,
    pool_id BIGINT NOT NULL,
    slot    BIGINT NOT NULL,
    PRIMARY KEY (owner, pool_id, slot)
);
DROP INDEX ip_leases_updated;
-- Room on each page for the new version of a lease, so that re-offers and renewals (which
-- change no indexed column) are HOT updates.
ALTER TABLE ip_leases SET (fillfactor = 80);
