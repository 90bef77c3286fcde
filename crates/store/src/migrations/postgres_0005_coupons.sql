-- Coupon instances (PostgreSQL): issued to a member from a template of the programme.
CREATE TABLE coupons (
    member_id BIGINT NOT NULL REFERENCES members (id),
    coupon_no BIGINT NOT NULL,
    template TEXT NOT NULL,
    -- issued, used or expired.
    state TEXT NOT NULL,
    -- manual, grant:BENEFIT, campaign:NAME, referral.
    source TEXT NOT NULL,
    issued_at_us BIGINT NOT NULL,
    valid_until_us BIGINT NOT NULL,
    order_id TEXT,
    used_at_us BIGINT,
    -- The client's id of the issue, so that a retry issues nothing more.
    issue_id TEXT,
    PRIMARY KEY (member_id, coupon_no)
);
CREATE UNIQUE INDEX coupons_issue ON coupons (member_id, issue_id, coupon_no);

-- Benefit quotas count a member's uses since the start of a period.
CREATE INDEX benefit_uses_member ON benefit_uses (member_id, benefit, at_us);

-- Orders Tessera priced and committed: the request that made each, and what it came to.
CREATE TABLE order_commits (
    member_id BIGINT NOT NULL REFERENCES members (id),
    order_id TEXT NOT NULL,
    request_sha256 TEXT NOT NULL,
    summary TEXT NOT NULL,
    -- Points the order spent, and how many refunds gave back.
    points_used BIGINT NOT NULL DEFAULT 0,
    points_returned BIGINT NOT NULL DEFAULT 0,
    -- Stored value the order spent (principal, bonus), and how much refunds gave back.
    sv_principal_used BIGINT NOT NULL DEFAULT 0,
    sv_bonus_used BIGINT NOT NULL DEFAULT 0,
    sv_returned BIGINT NOT NULL DEFAULT 0,
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (member_id, order_id)
);

-- Coupon packs granted by a benefit, one per member, benefit and month.
CREATE TABLE coupon_grants (
    member_id BIGINT NOT NULL REFERENCES members (id),
    benefit TEXT NOT NULL,
    period TEXT NOT NULL,
    issued_at_us BIGINT NOT NULL,
    PRIMARY KEY (member_id, benefit, period)
);

-- Stored value (储值): a member's prepaid balance, principal and bonus kept apart. Its
-- movements are entries of the points journal, on accounts of their own (`member:sv_*`,
-- `shop:sv_*`), in minor units of money.
CREATE TABLE stored_value_accounts (
    member_id BIGINT PRIMARY KEY REFERENCES members (id),
    principal BIGINT NOT NULL DEFAULT 0,
    bonus BIGINT NOT NULL DEFAULT 0
);

-- Top-ups, one per payment reference.
CREATE TABLE stored_value_topups (
    payment_ref TEXT PRIMARY KEY,
    member_id BIGINT NOT NULL REFERENCES members (id),
    offer TEXT NOT NULL,
    principal BIGINT NOT NULL,
    bonus BIGINT NOT NULL,
    entry_no BIGINT NOT NULL,
    at_us BIGINT NOT NULL
);
