-- Message tracking: what happened to each message, as metadata only (no bodies, no
-- values of a message). Written in batches by the tracking writer of `lgsp run`, read
-- by message id, purged by time (tracking.retention). Times are Unix milliseconds (UTC).
CREATE TABLE message_events (
    seq BIGSERIAL PRIMARY KEY,
    message_id  TEXT    NOT NULL,
    at          BIGINT  NOT NULL,
    event       TEXT    NOT NULL,
    route       TEXT    NOT NULL DEFAULT '',
    target      TEXT    NOT NULL DEFAULT '',
    detail      TEXT    NOT NULL DEFAULT ''
);
-- One index beside the key: every index is paid on each of the many inserts. The purge
-- walks the key from the oldest row (seq grows with time) and needs none.
CREATE INDEX message_events_message ON message_events (message_id);
