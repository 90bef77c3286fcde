-- Referral: each member's own code, who brought them, and the rewards of each referral.
ALTER TABLE members ADD COLUMN referral_code TEXT;
ALTER TABLE members ADD COLUMN referrer_id INTEGER REFERENCES members (id);
ALTER TABLE members ADD COLUMN referred_at_us INTEGER;
CREATE UNIQUE INDEX members_referral_code ON members (referral_code);
CREATE INDEX members_referrer ON members (referrer_id, id);

-- One row per reward rule per referral, keyed by the referee: its trigger fires once.
CREATE TABLE referral_rewards (
    referee_id INTEGER NOT NULL REFERENCES members (id),
    reward_id TEXT NOT NULL,
    referrer_id INTEGER NOT NULL REFERENCES members (id),
    beneficiary_id INTEGER NOT NULL REFERENCES members (id),
    trigger_kind TEXT NOT NULL,
    kind TEXT NOT NULL,
    amount INTEGER NOT NULL,
    -- What it gives of the programme: the coupon template, or the plan.
    item TEXT,
    state TEXT NOT NULL,
    -- The order or subscription that set it off.
    source_ref TEXT,
    due_at_us INTEGER NOT NULL,
    created_at_us INTEGER NOT NULL,
    -- When it was granted, capped or canceled.
    settled_at_us INTEGER,
    -- The journal entry, coupon number or subscription that gave it.
    granted_ref INTEGER,
    clawed_back INTEGER NOT NULL DEFAULT 0,
    clawed_at_us INTEGER,
    PRIMARY KEY (referee_id, reward_id)
);
CREATE INDEX referral_rewards_due ON referral_rewards (state, due_at_us);
CREATE INDEX referral_rewards_beneficiary ON referral_rewards (beneficiary_id, settled_at_us);
