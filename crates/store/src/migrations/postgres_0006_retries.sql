-- A retry always gets the first answer.

-- Idempotency keys: the route a key was first used on (reuse on another route has its own
-- error), and the token of the claim that runs (only that claim completes, renews or
-- abandons it). created_at_us is now the claim's lease: renewed while the request runs,
-- taken over a few seconds after its request died.
ALTER TABLE idempotency_keys ADD COLUMN route TEXT NOT NULL DEFAULT '';
ALTER TABLE idempotency_keys ADD COLUMN claim_token TEXT NOT NULL DEFAULT '';

-- The first answer to every request that carries a client id of its own (an order refund,
-- a stored-value refund, a coupon issue, a top-up, a plan payment): looked up under the
-- member's lock, so a retry replays it, byte for byte.
CREATE TABLE client_answers (
    member_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    client_id TEXT NOT NULL,
    request_sha256 TEXT NOT NULL,
    answer TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (member_id, kind, client_id)
);

-- An order id belongs to the member who first used it.
CREATE TABLE order_owners (
    order_id TEXT PRIMARY KEY,
    member_id BIGINT NOT NULL
);
INSERT INTO order_owners (order_id, member_id)
    SELECT order_id, MIN(member_id) FROM orders GROUP BY order_id;

-- How far each periodic job has run (the clock's instant): the next run covers the time
-- since, however long the server was down or the clock jumped.
CREATE TABLE job_marks (
    job TEXT PRIMARY KEY,
    done_until_us BIGINT NOT NULL
);
