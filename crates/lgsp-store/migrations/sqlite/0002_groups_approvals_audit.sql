-- Part 2 of the failed-message store: discard, edits as diffs, retention, approval
-- requests and the hash-chained audit log. Times are Unix milliseconds (UTC).

-- When a record stopped being `failed` (replayed or discarded): retention counts from it.
ALTER TABLE failed_messages ADD COLUMN settled_at INTEGER;
ALTER TABLE failed_messages ADD COLUMN discarded_by TEXT;
ALTER TABLE failed_messages ADD COLUMN discard_reason TEXT;
UPDATE failed_messages SET settled_at = (SELECT MAX(replayed_at) FROM replays WHERE replays.failed_id = failed_messages.id)
    WHERE status <> 'failed';
UPDATE failed_messages SET settled_at = stored_at WHERE status <> 'failed' AND settled_at IS NULL;
CREATE INDEX failed_messages_settled ON failed_messages (status, settled_at);

-- An edited replay keeps the edit as a diff against the stored body (JSON, see edit.rs)
-- instead of the whole edited body, when both are text.
ALTER TABLE replays ADD COLUMN edit_diff TEXT;

CREATE TABLE approval_requests (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at    INTEGER NOT NULL,
    requested_by  TEXT    NOT NULL,
    action        TEXT    NOT NULL,
    payload       TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    decided_by    TEXT,
    decided_at    INTEGER,
    result        TEXT
);
CREATE INDEX approval_requests_status ON approval_requests (status, id);

CREATE TABLE audit_log (
    seq          INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    actor        TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    message_ids  TEXT    NOT NULL,
    note         TEXT    NOT NULL,
    prev_hash    TEXT    NOT NULL,
    hash         TEXT    NOT NULL
);

-- The chain head: one row, locked by every append so appends from several processes
-- are serialised.
CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   INTEGER NOT NULL,
    hash  TEXT    NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
