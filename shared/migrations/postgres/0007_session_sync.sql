-- Instances sharing a database keep their open sessions in memory in step by reading what
-- the others closed (by stop time) and opened (by start time) since their last look.
-- Stops already leave the open-sessions index, so this adds no cost to interim updates.
CREATE INDEX sessions_stop ON sessions (acct_stop_time) WHERE acct_stop_time IS NOT NULL;
