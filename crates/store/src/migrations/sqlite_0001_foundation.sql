-- Tessera foundation schema (SQLite). Times are microseconds since the Unix epoch, UTC.
-- Every table that holds member data carries member_id, so the schema can be distributed
-- by member.
CREATE TABLE programme_versions (
    version INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    created_at_us INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    key_sha256 TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at_us INTEGER NOT NULL,
    revoked_at_us INTEGER
);

CREATE TABLE members (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    attributes TEXT NOT NULL,
    referred_by_code TEXT,
    created_at_us INTEGER NOT NULL,
    updated_at_us INTEGER NOT NULL,
    closed_at_us INTEGER
);

CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    member_id INTEGER NOT NULL REFERENCES members (id),
    type TEXT NOT NULL,
    order_id TEXT,
    occurred_at_us INTEGER NOT NULL,
    received_at_us INTEGER NOT NULL,
    body TEXT NOT NULL,
    body_sha256 TEXT NOT NULL
);
CREATE INDEX events_by_member ON events (member_id, seq);

CREATE TABLE idempotency_keys (
    api_key_id INTEGER NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_sha256 TEXT NOT NULL,
    status INTEGER,
    response TEXT,
    created_at_us INTEGER NOT NULL,
    PRIMARY KEY (api_key_id, idempotency_key)
);

CREATE TABLE clock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    now_us INTEGER NOT NULL
);
