-- The accounting journal: each row is one batch of accounting events (encoded as in
-- shared/src/journal.rs), stored before the batch's Accounting-Responses are sent and deleted
-- in the transaction that folds it into sessions. Rows left by a crash are folded at start.
CREATE TABLE acct_journal (
    writer     INTEGER NOT NULL,
    batch      INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    entry      BLOB    NOT NULL,
    PRIMARY KEY (writer, batch)
);
