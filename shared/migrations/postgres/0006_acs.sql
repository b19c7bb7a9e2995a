-- The TR-069 ACS: the device registry, its reported parameters, queued tasks, presets and
-- the files served to CPEs.
CREATE TABLE cwmp_devices (
    -- `OUI-ProductClass-SerialNumber`, percent-encoded as GenieACS does.
    id                          TEXT   PRIMARY KEY,
    oui                         TEXT   NOT NULL,
    product_class               TEXT   NOT NULL,
    serial_number               TEXT   NOT NULL,
    manufacturer                TEXT   NOT NULL,
    model                       TEXT   NOT NULL DEFAULT '',
    software_version            TEXT   NOT NULL DEFAULT '',
    hardware_version            TEXT   NOT NULL DEFAULT '',
    -- The address the last session came from.
    ip                          TEXT   NOT NULL DEFAULT '',
    -- `Device.` or `InternetGatewayDevice.`.
    data_model                  TEXT   NOT NULL DEFAULT '',
    cwmp_version                TEXT   NOT NULL DEFAULT '',
    first_inform_us             BIGINT NOT NULL,
    last_inform_us              BIGINT NOT NULL,
    -- The last Inform's event codes, comma-separated.
    last_events                 TEXT   NOT NULL DEFAULT '',
    connection_request_url      TEXT   NOT NULL DEFAULT '',
    connection_request_username TEXT   NOT NULL DEFAULT '',
    connection_request_password TEXT   NOT NULL DEFAULT '',
    -- Per-device credentials the CPE authenticates with (empty: the global ones).
    auth_username               TEXT   NOT NULL DEFAULT '',
    auth_password               TEXT   NOT NULL DEFAULT '',
    -- JSON array of strings.
    tags                        TEXT   NOT NULL DEFAULT '[]',
    -- The presets' fingerprint the device last converged on (NULL: check at next session).
    preset_fingerprint          BIGINT,
    -- When tags or credentials last changed: running ACS processes drop what they cached.
    changed_us                  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX cwmp_devices_last_inform ON cwmp_devices (last_inform_us);
CREATE INDEX cwmp_devices_changed ON cwmp_devices (changed_us);

CREATE TABLE cwmp_parameters (
    device_id   TEXT   NOT NULL REFERENCES cwmp_devices (id) ON DELETE CASCADE,
    name        TEXT   NOT NULL,
    value       TEXT   NOT NULL,
    -- xsd type without prefix (`string`, `unsignedInt`...), when the CPE gave one.
    kind        TEXT,
    updated_us  BIGINT NOT NULL,
    PRIMARY KEY (device_id, name)
);

CREATE TABLE cwmp_tasks (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id       TEXT    NOT NULL REFERENCES cwmp_devices (id) ON DELETE CASCADE,
    kind            TEXT    NOT NULL,
    -- The task as JSON (edge-acs TaskSpec).
    spec            TEXT    NOT NULL,
    -- queued: waits for a session; waiting: a download the CPE accepted, until its
    -- TransferComplete; done; fault: failed its last attempt.
    status          TEXT    NOT NULL CHECK (status IN ('queued', 'waiting', 'done', 'fault')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- Back-off: not sent before this time.
    not_before_us   BIGINT  NOT NULL,
    created_us      BIGINT  NOT NULL,
    updated_us      BIGINT  NOT NULL,
    -- JSON.
    result          TEXT,
    fault_code      INTEGER,
    fault_string    TEXT
);
CREATE INDEX cwmp_tasks_device ON cwmp_tasks (device_id, id);
CREATE INDEX cwmp_tasks_open ON cwmp_tasks (status, device_id) WHERE status IN ('queued', 'waiting');

CREATE TABLE cwmp_presets (
    name        TEXT   PRIMARY KEY,
    -- JSON (edge-acs Preset).
    spec        TEXT   NOT NULL,
    updated_us  BIGINT NOT NULL
);

CREATE TABLE cwmp_files (
    name        TEXT   PRIMARY KEY,
    -- TR-069 FileType, e.g. `1 Firmware Upgrade Image`.
    file_type   TEXT   NOT NULL,
    size        BIGINT NOT NULL,
    sha256      TEXT   NOT NULL,
    content     BYTEA  NOT NULL,
    created_us  BIGINT NOT NULL
);
