-- The accounting journal: each row is one batch of accounting events (encoded as in
-- shared/src/journal.rs), stored before the batch's Accounting-Responses are sent and deleted
-- in the transaction that folds it into sessions. Rows left by a crash are folded at start.
CREATE TABLE acct_journal (
    -- The writing process (random per start) and its batch number.
    writer     BIGINT NOT NULL,
    batch      BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    entry      BYTEA  NOT NULL,
    PRIMARY KEY (writer, batch)
);
-- Stored as is: compressing costs CPU on the path to the answer, and the row lives briefly.
ALTER TABLE acct_journal ALTER COLUMN entry SET STORAGE EXTERNAL;
