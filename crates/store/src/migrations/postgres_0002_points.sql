-- Points ledger (PostgreSQL). Every table is keyed by member_id first, so that orders of
-- different members never touch the same row and the schema distributes by member.

-- A member's balances: the only per-member counters, updated once per write.
CREATE TABLE point_accounts (
    member_id BIGINT PRIMARY KEY REFERENCES members (id),
    pending BIGINT NOT NULL DEFAULT 0 CHECK (pending >= 0),
    available BIGINT NOT NULL DEFAULT 0 CHECK (available >= 0),
    debt BIGINT NOT NULL DEFAULT 0 CHECK (debt >= 0),
    next_lot_no BIGINT NOT NULL DEFAULT 1,
    next_entry_no BIGINT NOT NULL DEFAULT 1,
    -- Orders paid so far (a first-order bonus needs to know).
    paid_orders BIGINT NOT NULL DEFAULT 0,
    last_activity_us BIGINT,
    -- When every point expires for inactivity (only under that policy).
    inactive_at_us BIGINT
);
CREATE INDEX point_accounts_inactive ON point_accounts (inactive_at_us) WHERE inactive_at_us IS NOT NULL;
INSERT INTO point_accounts (member_id) SELECT id FROM members;

CREATE TABLE point_lots (
    member_id BIGINT NOT NULL REFERENCES members (id),
    lot_no BIGINT NOT NULL,
    source TEXT NOT NULL,
    order_id TEXT,
    earned_at_us BIGINT NOT NULL,
    available_at_us BIGINT NOT NULL,
    expires_at_us BIGINT,
    points BIGINT NOT NULL CHECK (points >= 0),
    remaining BIGINT NOT NULL CHECK (remaining >= 0 AND remaining <= points),
    state TEXT NOT NULL,
    PRIMARY KEY (member_id, lot_no)
);
CREATE INDEX point_lots_pending ON point_lots (available_at_us) WHERE state = 'pending';
CREATE INDEX point_lots_expiring ON point_lots (expires_at_us) WHERE state <> 'expired' AND expires_at_us IS NOT NULL;
-- Covers the sums of what a member earned in a day or month (the caps).
CREATE INDEX point_lots_earned ON point_lots (member_id, earned_at_us, source, points);

-- The journal: one row per balanced movement, its postings below.
CREATE TABLE point_entries (
    member_id BIGINT NOT NULL REFERENCES members (id),
    entry_no BIGINT NOT NULL,
    kind TEXT NOT NULL,
    at_us BIGINT NOT NULL,
    recorded_at_us BIGINT NOT NULL,
    order_id TEXT,
    event_id TEXT,
    reference TEXT,
    reward_id TEXT,
    reason TEXT,
    pending_after BIGINT NOT NULL,
    available_after BIGINT NOT NULL,
    debt_after BIGINT NOT NULL,
    PRIMARY KEY (member_id, entry_no)
);

CREATE TABLE point_postings (
    member_id BIGINT NOT NULL REFERENCES members (id),
    entry_no BIGINT NOT NULL,
    posting_no BIGINT NOT NULL,
    account TEXT NOT NULL,
    lot_no BIGINT,
    amount BIGINT NOT NULL,
    PRIMARY KEY (member_id, entry_no, posting_no)
);

-- Redemptions and adjustments by their client-given id: the same id replays.
CREATE TABLE point_operations (
    member_id BIGINT NOT NULL REFERENCES members (id),
    operation_id TEXT NOT NULL,
    request_sha256 TEXT NOT NULL,
    entry_no BIGINT NOT NULL,
    PRIMARY KEY (member_id, operation_id)
);

-- Orders as the ledger knows them: what was paid, what each line was worth, what has
-- been refunded, and refunds that arrived before their order.
CREATE TABLE orders (
    member_id BIGINT NOT NULL REFERENCES members (id),
    order_id TEXT NOT NULL,
    state TEXT NOT NULL,
    paid_at_us BIGINT,
    total_minor BIGINT NOT NULL DEFAULT 0,
    goods_minor BIGINT NOT NULL DEFAULT 0,
    lines TEXT NOT NULL DEFAULT '[]',
    points_earned BIGINT NOT NULL DEFAULT 0,
    points_reversed BIGINT NOT NULL DEFAULT 0,
    refunded_goods_minor BIGINT NOT NULL DEFAULT 0,
    refunded_total_minor BIGINT NOT NULL DEFAULT 0,
    waiting_refunds TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (member_id, order_id)
);

-- Catalogue rewards redeemed so far, against their stock.
CREATE TABLE reward_stock (
    reward_id TEXT PRIMARY KEY,
    redeemed BIGINT NOT NULL
);
