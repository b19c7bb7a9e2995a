-- Accounting sessions: one row per session, keyed by its unique id (derived as FreeRADIUS's
-- default acct_unique policy does). Times are Unix seconds; the radacct view below shows them
-- as timestamps for the reporting tools written against FreeRADIUS's schema.
CREATE TABLE sessions (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    acct_session_id        TEXT   NOT NULL,
    acct_unique_id         TEXT   NOT NULL UNIQUE,
    username               TEXT   NOT NULL,
    realm                  TEXT,
    nas_id                 BIGINT,
    nas_ip_address         TEXT   NOT NULL,
    nas_identifier         TEXT,
    nas_port               BIGINT,
    nas_port_id            TEXT,
    nas_port_type          TEXT,
    acct_start_time        BIGINT,
    acct_update_time       BIGINT,
    acct_stop_time         BIGINT,
    acct_interval          BIGINT,
    acct_session_time      BIGINT NOT NULL DEFAULT 0,
    acct_authentic         TEXT,
    connect_info_start     TEXT,
    connect_info_stop      TEXT,
    acct_input_octets      BIGINT NOT NULL DEFAULT 0,
    acct_output_octets     BIGINT NOT NULL DEFAULT 0,
    acct_input_packets     BIGINT NOT NULL DEFAULT 0,
    acct_output_packets    BIGINT NOT NULL DEFAULT 0,
    called_station_id      TEXT,
    calling_station_id     TEXT,
    acct_terminate_cause   TEXT,
    service_type           TEXT,
    framed_protocol        TEXT,
    framed_ip_address      TEXT,
    framed_ipv6_address    TEXT,
    framed_ipv6_prefix     TEXT,
    framed_interface_id    TEXT,
    delegated_ipv6_prefix  TEXT,
    class                  TEXT,
    -- Our own: when this server last heard of the session (its clock), for the reaper.
    last_seen              BIGINT NOT NULL,
    -- 1 when acct_start_time came from a Start (a derived start never replaces it).
    start_reported         BIGINT NOT NULL DEFAULT 0
);
-- Open sessions are few and read at start; history is searched by user, address and time
-- (pruning goes by start time too). Few indexes: every one costs each session write.
CREATE INDEX sessions_open ON sessions (nas_ip_address) WHERE acct_stop_time IS NULL;
CREATE INDEX sessions_username_start ON sessions (username, acct_start_time);
CREATE INDEX sessions_framed_ip_start ON sessions (framed_ip_address, acct_start_time);
CREATE INDEX sessions_start ON sessions (acct_start_time);

ALTER TABLE plans ADD COLUMN simultaneous_use INTEGER;

-- FreeRADIUS's radacct, column for column, over our sessions.
CREATE VIEW radacct AS
SELECT id                                           AS radacctid,
       acct_session_id                              AS acctsessionid,
       acct_unique_id                               AS acctuniqueid,
       username,
       realm,
       nas_ip_address                               AS nasipaddress,
       nas_port_id                                  AS nasportid,
       nas_port_type                                AS nasporttype,
       datetime(acct_start_time, 'unixepoch')       AS acctstarttime,
       datetime(acct_update_time, 'unixepoch')      AS acctupdatetime,
       datetime(acct_stop_time, 'unixepoch')        AS acctstoptime,
       acct_interval                                AS acctinterval,
       acct_session_time                            AS acctsessiontime,
       acct_authentic                               AS acctauthentic,
       connect_info_start                           AS connectinfo_start,
       connect_info_stop                            AS connectinfo_stop,
       acct_input_octets                            AS acctinputoctets,
       acct_output_octets                           AS acctoutputoctets,
       called_station_id                            AS calledstationid,
       calling_station_id                           AS callingstationid,
       acct_terminate_cause                         AS acctterminatecause,
       service_type                                 AS servicetype,
       framed_protocol                              AS framedprotocol,
       framed_ip_address                            AS framedipaddress,
       framed_ipv6_address                          AS framedipv6address,
       framed_ipv6_prefix                           AS framedipv6prefix,
       framed_interface_id                          AS framedinterfaceid,
       delegated_ipv6_prefix                        AS delegatedipv6prefix,
       class
FROM sessions;
