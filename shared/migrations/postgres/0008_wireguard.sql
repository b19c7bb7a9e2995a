-- NAS links over WireGuard. A NAS registered with a tunnel holds its peer's public key and its
-- tunnel address (also its RADIUS client address) taken from a management pool; the pool's
-- purpose keeps subscriber plans away from it. The unique indexes are what keeps two
-- registrations racing on different instances from sharing an address or a key.
ALTER TABLE ip_pools ADD COLUMN purpose TEXT NOT NULL DEFAULT 'subscribers'
    CHECK (purpose IN ('subscribers', 'nas-tunnels'));
ALTER TABLE nas ADD COLUMN wg_public_key TEXT;
ALTER TABLE nas ADD COLUMN wg_address TEXT;
ALTER TABLE nas ADD COLUMN wg_pool_id BIGINT REFERENCES ip_pools (id) ON DELETE RESTRICT;
ALTER TABLE nas ADD COLUMN wg_keepalive_seconds INTEGER;
CREATE UNIQUE INDEX nas_wg_public_key ON nas (wg_public_key) WHERE wg_public_key IS NOT NULL;
CREATE UNIQUE INDEX nas_wg_address ON nas (wg_address) WHERE wg_address IS NOT NULL;
