-- Failed messages (format_version 1) and their replay history.
-- Times are Unix milliseconds (UTC) so range filters work the same on every backend.
CREATE TABLE failed_messages (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    format_version       INTEGER NOT NULL,
    failure_id           TEXT    NOT NULL UNIQUE,
    message_id           TEXT    NOT NULL,
    route                TEXT,
    targets              TEXT    NOT NULL,
    original_exchange    TEXT    NOT NULL,
    original_routing_key TEXT    NOT NULL,
    source_queue         TEXT    NOT NULL,
    properties           TEXT    NOT NULL,
    headers              TEXT    NOT NULL,
    body                 BLOB    NOT NULL,
    content_type         TEXT,
    error_kind           TEXT    NOT NULL,
    error_code           TEXT    NOT NULL,
    error                TEXT    NOT NULL,
    attempts             INTEGER NOT NULL,
    first_failed_at      INTEGER NOT NULL,
    last_failed_at       INTEGER NOT NULL,
    stored_at            INTEGER NOT NULL,
    status               TEXT    NOT NULL
);
CREATE INDEX failed_messages_status ON failed_messages (status, id);
CREATE INDEX failed_messages_group ON failed_messages (route, error_kind, error_code);
CREATE INDEX failed_messages_message ON failed_messages (message_id);
CREATE INDEX failed_messages_time ON failed_messages (last_failed_at);

CREATE TABLE replays (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    failed_id     INTEGER NOT NULL REFERENCES failed_messages (id),
    replayed_at   INTEGER NOT NULL,
    actor         TEXT    NOT NULL,
    exchange      TEXT    NOT NULL,
    routing_key   TEXT    NOT NULL,
    targets       TEXT    NOT NULL,
    edited_body   BLOB
);
CREATE INDEX replays_failed ON replays (failed_id, id);
