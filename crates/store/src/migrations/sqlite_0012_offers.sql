-- Conversion offers: who was shown an offer, and who took it (one row each per member
-- and offer), for the offer's conversion.
CREATE TABLE offer_exposures (
    member_id INTEGER NOT NULL REFERENCES members (id),
    offer_id TEXT NOT NULL,
    first_at_us INTEGER NOT NULL,
    last_at_us INTEGER NOT NULL,
    exposures INTEGER NOT NULL,
    -- What first showed it: `call` (POST /v1/offers/{id}/exposures) or `quote` (the upsell).
    source TEXT NOT NULL,
    PRIMARY KEY (member_id, offer_id)
);
CREATE INDEX offer_exposures_offer ON offer_exposures (offer_id);

CREATE TABLE offer_acceptances (
    member_id INTEGER NOT NULL REFERENCES members (id),
    offer_id TEXT NOT NULL,
    at_us INTEGER NOT NULL,
    -- The purchase that used it, or the coupon it gave.
    subscription_id INTEGER,
    coupon_no INTEGER,
    PRIMARY KEY (member_id, offer_id)
);
CREATE INDEX offer_acceptances_offer ON offer_acceptances (offer_id);

-- A member's recent orders, for the statistics offers target by.
CREATE INDEX orders_member_paid ON orders (member_id, paid_at_us);
