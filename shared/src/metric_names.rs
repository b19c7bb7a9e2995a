//! Metric names: `edge_<subsystem>_<name>`, `_total` on counters. Labels come from closed
//! sets (reason, code, role), never a username or an address.

pub const RADIUS_REQUESTS_TOTAL: &str = "edge_radius_requests_total";
pub const RADIUS_RESPONSES_TOTAL: &str = "edge_radius_responses_total";
pub const RADIUS_DROPPED_TOTAL: &str = "edge_radius_dropped_total";
pub const RADIUS_DUPLICATES_TOTAL: &str = "edge_radius_duplicates_total";
pub const RADIUS_SHED_TOTAL: &str = "edge_radius_shed_total";
pub const INDEX_SUBSCRIBERS: &str = "edge_index_subscribers";
pub const INDEX_REFRESH_TOTAL: &str = "edge_index_refresh_total";
pub const INDEX_REVISION: &str = "edge_index_revision";
pub const INDEX_LOAD_SECONDS: &str = "edge_index_load_seconds";
pub const ACCT_RECORDS_TOTAL: &str = "edge_accounting_records_total";
pub const ACCT_FAILED_TOTAL: &str = "edge_accounting_failed_total";
pub const ACCT_SHED_TOTAL: &str = "edge_accounting_shed_total";
pub const ACCT_REAPED_TOTAL: &str = "edge_accounting_reaped_total";
pub const ACCT_BATCH_SIZE: &str = "edge_accounting_batch_size";
pub const ACCT_COMMIT_SECONDS: &str = "edge_accounting_commit_seconds";
pub const ACCT_ACTIVE_SESSIONS: &str = "edge_accounting_active_sessions";
pub const ACCT_UNFOLDED: &str = "edge_accounting_unfolded_records";
pub const ACCT_BACKLOG_FULL_TOTAL: &str = "edge_accounting_backlog_full_total";
pub const ACCT_PACED_TOTAL: &str = "edge_accounting_paced_batches_total";
pub const ACCT_FOLD_SIZE: &str = "edge_accounting_fold_size";
pub const ACCT_FOLD_SECONDS: &str = "edge_accounting_fold_seconds";
pub const ACCT_FOLD_FAILED_TOTAL: &str = "edge_accounting_fold_failed_total";
pub const ACCT_RECOVERED_TOTAL: &str = "edge_accounting_recovered_total";
pub const ACCT_JOURNAL_CORRUPT_TOTAL: &str = "edge_accounting_journal_corrupt_total";
pub const ACCT_SPOOLED_TOTAL: &str = "edge_accounting_spooled_total";
pub const ACCT_REPLAYED_TOTAL: &str = "edge_accounting_replayed_total";
pub const ACCT_SPOOL_FULL_TOTAL: &str = "edge_accounting_spool_full_total";
pub const ACCT_SPOOL_BATCHES: &str = "edge_accounting_spool_batches";
pub const ACCT_SPOOL_BYTES: &str = "edge_accounting_spool_bytes";

/// Addresses and prefixes handed out in Access-Accepts (stored before the answer).
pub const IPAM_ALLOCATED_TOTAL: &str = "edge_ipam_allocated_total";
/// Access-Requests refused because a pool (and its fallbacks) had nothing free, by pool.
pub const IPAM_EXHAUSTED_TOTAL: &str = "edge_ipam_exhausted_total";
pub const IPAM_DEFERRED_TOTAL: &str = "edge_ipam_deferred_total";
/// Allocations refused because this instance could not allocate (name not held, database
/// out of reach, pool unknown).
pub const IPAM_UNAVAILABLE_TOTAL: &str = "edge_ipam_unavailable_total";
/// Accounting reports naming an address of a pool this instance did not hand out to that
/// subscriber, by kind (`held`: another subscriber holds it; `unallocated`: nobody did).
pub const IPAM_CONFLICTS_TOTAL: &str = "edge_ipam_conflicts_total";
/// Accounting Starts carrying an address outside every pool.
pub const IPAM_EXTERNAL_TOTAL: &str = "edge_ipam_external_leases_total";
/// Slots of a pool (less excluded ones), owned by this instance, and free among them.
pub const IPAM_POOL_SLOTS: &str = "edge_ipam_pool_slots";
pub const IPAM_POOL_OWNED: &str = "edge_ipam_pool_owned_slots";
pub const IPAM_POOL_FREE: &str = "edge_ipam_pool_free_slots";
/// Blocks claimed from the database, and given back.
pub const IPAM_BLOCKS_CLAIMED_TOTAL: &str = "edge_ipam_blocks_claimed_total";
pub const IPAM_BLOCKS_RETURNED_TOTAL: &str = "edge_ipam_blocks_returned_total";
/// 1 while this instance holds its name and may allocate.
pub const IPAM_READY: &str = "edge_ipam_ready";

/// Disconnect and CoA requests sent to NAS, by kind (`disconnect`, `coa`) and result
/// (`ack`, `nak`, `timeout`, `error`).
pub const COA_REQUESTS_TOTAL: &str = "edge_coa_requests_total";
/// Datagrams received on a CoA client socket that were not a valid answer (forged, wrong
/// id or code); dropped.
pub const COA_INVALID_ANSWERS_TOTAL: &str = "edge_coa_invalid_answers_total";

/// REST API requests answered, by status class (`2xx`, `4xx`, `5xx`).
pub const API_REQUESTS_TOTAL: &str = "edge_api_requests_total";
/// Requests refused for missing or invalid credentials, by reason (`missing`, `invalid`,
/// `expired`, `scope`).
pub const API_AUTH_FAILURES_TOTAL: &str = "edge_api_auth_failures_total";
/// Requests shed because the API was at its concurrency limit.
pub const API_SHED_TOTAL: &str = "edge_api_shed_total";
/// Reads run a second time because the first found its database connection lost (a
/// restart or failover of the database).
pub const API_RETRIED_TOTAL: &str = "edge_api_retried_total";

/// CWMP sessions ended, by result (`complete`: 204 sent; `timeout`; `refused`: not an
/// Inform first, or the device already in a session).
pub const ACS_SESSIONS_TOTAL: &str = "edge_acs_sessions_total";
/// CWMP sessions open now.
pub const ACS_SESSIONS_OPEN: &str = "edge_acs_sessions_open";
/// Informs received, by whether the device was new (`new`, `known`).
pub const ACS_INFORMS_TOTAL: &str = "edge_acs_informs_total";
/// Requests refused before any session: bad XML, oversized bodies, wrong method or path, by
/// reason (`xml`, `size`, `method`, `no_session`).
pub const ACS_BAD_REQUESTS_TOTAL: &str = "edge_acs_bad_requests_total";
/// CPE authentication failures (`missing`, `invalid`).
pub const ACS_AUTH_FAILURES_TOTAL: &str = "edge_acs_auth_failures_total";
pub const ACS_TLS_HANDSHAKE_FAILURES_TOTAL: &str = "edge_acs_tls_handshake_failures_total";
pub const ACS_PARKED_TOTAL: &str = "edge_acs_parked_total";
pub const ACS_CACHED_DEVICES: &str = "edge_acs_cached_devices";
pub const ACS_CACHE_EVICTIONS_TOTAL: &str = "edge_acs_cache_evictions_total";
/// Task attempts ended, by outcome (`done`, `fault`, `waiting`, `unanswered`).
pub const ACS_TASKS_TOTAL: &str = "edge_acs_tasks_total";
/// Batches of device state the database refused (the batch is retried, then dropped).
pub const ACS_WRITE_FAILURES_TOTAL: &str = "edge_acs_write_failures_total";
/// Device-state batches committed, and their size.
pub const ACS_BATCH_SIZE: &str = "edge_acs_batch_size";
/// Connection requests sent, by result (`ok`, `refused`, `error`).
pub const ACS_CONNECTION_REQUESTS_TOTAL: &str = "edge_acs_connection_requests_total";
/// Preset checks that ended in a fault from the device.
pub const ACS_PRESET_FAULTS_TOTAL: &str = "edge_acs_preset_faults_total";

// WireGuard (NAS tunnels). Per-peer series carry the NAS name: a closed set the operator
// manages (one series per registered NAS), never an address or a key.
/// Peers on the interface.
pub const WG_PEERS: &str = "edge_wireguard_peers";
/// Peers with a handshake in the last 180 s (WireGuard's reject-after time).
pub const WG_PEERS_UP: &str = "edge_wireguard_peers_up";
/// Reconciliations of the interface's peers with the NAS table, by `result` (ok, error).
pub const WG_RECONCILE_TOTAL: &str = "edge_wireguard_reconcile_total";
/// How long the last reconciliation took.
pub const WG_RECONCILE_SECONDS: &str = "edge_wireguard_reconcile_seconds";
/// Peers added or changed, and removed, by reconciliation, by `change` (upsert, remove).
pub const WG_PEER_CHANGES_TOTAL: &str = "edge_wireguard_peer_changes_total";
/// Unix time of a NAS peer's last handshake (0: none yet), by `nas`.
pub const WG_PEER_LAST_HANDSHAKE: &str = "edge_wireguard_peer_last_handshake_timestamp_seconds";
/// Bytes received from a NAS peer through the tunnel, by `nas`.
pub const WG_PEER_RECEIVE_BYTES: &str = "edge_wireguard_peer_receive_bytes_total";
/// Bytes sent to a NAS peer through the tunnel, by `nas`.
pub const WG_PEER_TRANSMIT_BYTES: &str = "edge_wireguard_peer_transmit_bytes_total";
