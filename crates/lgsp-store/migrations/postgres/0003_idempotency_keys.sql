-- Idempotency keys of the HTTP gateway: one row per (application, key) within the
-- window; the first request's message id is answered again to a repeat. confirmed = 1
-- once the broker confirmed that message; until then a repeat waits. body_sha256 tells a
-- repeat from a different request reusing the key. Times are Unix milliseconds (UTC).
CREATE TABLE idempotency_keys (
    app          TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    message_id   TEXT    NOT NULL,
    body_sha256  TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    confirmed    BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (app, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
