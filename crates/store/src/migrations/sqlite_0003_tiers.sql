-- Score and tiers (SQLite). Keyed by member first, like the points ledger.

-- Every change of a measure a tier can be counted in: score, spend (minor units paid for
-- goods) and points earned; refunds are negative entries at the refund's instant.
CREATE TABLE measure_entries (
    member_id INTEGER NOT NULL REFERENCES members (id),
    event_id TEXT NOT NULL,
    measure TEXT NOT NULL,
    at_us INTEGER NOT NULL,
    amount INTEGER NOT NULL,
    order_id TEXT,
    PRIMARY KEY (member_id, event_id, measure)
);
CREATE INDEX measure_entries_window ON measure_entries (member_id, measure, at_us, amount);

-- A member's tier and when it is next looked at.
CREATE TABLE member_tiers (
    member_id INTEGER PRIMARY KEY REFERENCES members (id),
    tier TEXT,
    since_us INTEGER,
    retained_until_us INTEGER,
    -- A lower tier earned again meanwhile, and until when it holds.
    floor_tier TEXT,
    floor_until_us INTEGER,
    next_evaluation_us INTEGER,
    next_warning_us INTEGER,
    last_evaluated_us INTEGER,
    next_history_no INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX member_tiers_evaluation ON member_tiers (next_evaluation_us) WHERE next_evaluation_us IS NOT NULL;
CREATE INDEX member_tiers_warning ON member_tiers (next_warning_us) WHERE next_warning_us IS NOT NULL;
INSERT INTO member_tiers (member_id) SELECT id FROM members;

-- Every change of tier, every retention earned again, every warning.
CREATE TABLE tier_history (
    member_id INTEGER NOT NULL REFERENCES members (id),
    history_no INTEGER NOT NULL,
    at_us INTEGER NOT NULL,
    kind TEXT NOT NULL,
    from_tier TEXT,
    to_tier TEXT,
    measure_value INTEGER NOT NULL,
    needed INTEGER,
    evaluation_at_us INTEGER,
    PRIMARY KEY (member_id, history_no)
);

-- The score an order added and how much of it refunds took back.
ALTER TABLE orders ADD COLUMN score_earned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN score_reversed INTEGER NOT NULL DEFAULT 0;
