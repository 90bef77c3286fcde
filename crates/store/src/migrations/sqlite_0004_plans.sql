-- Plans and subscriptions (SQLite). Every table carries the member it belongs to.

-- A member's subscription to a plan: who holds it, who paid, where it stands.
CREATE TABLE subscriptions (
    id INTEGER PRIMARY KEY,
    member_id INTEGER NOT NULL REFERENCES members (id),
    buyer_member_id INTEGER NOT NULL REFERENCES members (id),
    plan TEXT NOT NULL,
    status TEXT NOT NULL,
    auto_renew INTEGER NOT NULL,
    cancel_at_period_end INTEGER NOT NULL DEFAULT 0,
    access_end_us INTEGER NOT NULL,
    -- Access was cut short at access_end_us (canceled now, refunded).
    cut INTEGER NOT NULL DEFAULT 0,
    grace_until_us INTEGER,
    renewal_noticed_for_us INTEGER,
    -- When the clock next has something to do with it.
    next_due_us INTEGER,
    created_at_us INTEGER NOT NULL,
    updated_at_us INTEGER NOT NULL,
    next_term_no INTEGER NOT NULL DEFAULT 1,
    next_history_no INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX subscriptions_member ON subscriptions (member_id, plan);
CREATE INDEX subscriptions_buyer ON subscriptions (buyer_member_id);
CREATE INDEX subscriptions_due ON subscriptions (next_due_us) WHERE next_due_us IS NOT NULL;

-- Its terms: a trial, or a paid term confirmed by the shop's payment reference.
CREATE TABLE subscription_terms (
    subscription_id INTEGER NOT NULL REFERENCES subscriptions (id),
    term_no INTEGER NOT NULL,
    member_id INTEGER NOT NULL REFERENCES members (id),
    kind TEXT NOT NULL,
    start_us INTEGER NOT NULL,
    end_us INTEGER NOT NULL,
    amount_minor INTEGER NOT NULL,
    price_basis TEXT NOT NULL,
    paid_at_us INTEGER NOT NULL,
    refunded_minor INTEGER NOT NULL DEFAULT 0,
    payment_ref TEXT UNIQUE,
    request_sha256 TEXT,
    PRIMARY KEY (subscription_id, term_no)
);
CREATE INDEX subscription_terms_holder ON subscription_terms (member_id, subscription_id, term_no);

-- Every change: status moves with their cause, payments, renewals due, cancels, refunds.
CREATE TABLE subscription_history (
    subscription_id INTEGER NOT NULL REFERENCES subscriptions (id),
    history_no INTEGER NOT NULL,
    member_id INTEGER NOT NULL REFERENCES members (id),
    at_us INTEGER NOT NULL,
    kind TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT,
    cause TEXT NOT NULL,
    payment_ref TEXT,
    amount_minor INTEGER,
    PRIMARY KEY (subscription_id, history_no)
);

-- Renewals the shop's billing should charge.
CREATE TABLE renewals_due (
    subscription_id INTEGER NOT NULL REFERENCES subscriptions (id),
    period_end_us INTEGER NOT NULL,
    member_id INTEGER NOT NULL REFERENCES members (id),
    due_at_us INTEGER NOT NULL,
    amount_minor INTEGER NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (subscription_id, period_end_us)
);
CREATE INDEX renewals_due_state ON renewals_due (state, due_at_us, subscription_id);

-- A member trials a plan at most once.
CREATE TABLE plan_trials (
    member_id INTEGER NOT NULL REFERENCES members (id),
    plan TEXT NOT NULL,
    subscription_id INTEGER NOT NULL,
    at_us INTEGER NOT NULL,
    PRIMARY KEY (member_id, plan)
);

-- Codes of partner rights, handed out in upload order, each at most once.
CREATE TABLE partner_codes (
    id INTEGER PRIMARY KEY,
    pool TEXT NOT NULL,
    code TEXT NOT NULL,
    uploaded_at_us INTEGER NOT NULL,
    member_id INTEGER REFERENCES members (id),
    subscription_id INTEGER,
    term_no INTEGER,
    assigned_at_us INTEGER,
    UNIQUE (pool, code)
);
CREATE INDEX partner_codes_free ON partner_codes (pool, id) WHERE member_id IS NULL;
CREATE INDEX partner_codes_subscription ON partner_codes (subscription_id) WHERE subscription_id IS NOT NULL;

-- Benefits used, with what each cost the shop.
CREATE TABLE benefit_uses (
    id INTEGER PRIMARY KEY,
    member_id INTEGER NOT NULL REFERENCES members (id),
    subscription_id INTEGER,
    term_no INTEGER,
    benefit TEXT NOT NULL,
    partner TEXT,
    reference TEXT,
    cost_minor INTEGER NOT NULL,
    at_us INTEGER NOT NULL,
    UNIQUE (partner, reference)
);
CREATE INDEX benefit_uses_subscription ON benefit_uses (subscription_id, benefit);

-- A partner's key answers for that partner only.
ALTER TABLE api_keys ADD COLUMN partner TEXT;
