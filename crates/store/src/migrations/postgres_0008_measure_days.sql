-- Cost follows what is open, not history: a measure summed over a window of months reads
-- one row per day the member had entries, plus the entries of the two partial days at the
-- window's ends, instead of every entry in the window. A day is a UTC day (at_us floored
-- to a multiple of 86,400,000,000); the total is the sum of the day's entries, kept in
-- the same transaction as they are written.
CREATE TABLE measure_days (
    member_id BIGINT NOT NULL REFERENCES members (id),
    measure TEXT NOT NULL,
    day BIGINT NOT NULL,
    total BIGINT NOT NULL,
    PRIMARY KEY (member_id, measure, day)
);
-- The floor of at_us / 86,400,000,000 for negative instants too (% truncates toward zero).
INSERT INTO measure_days (member_id, measure, day, total)
SELECT member_id, measure, day, SUM(amount) FROM (
    SELECT member_id, measure, amount,
        (at_us - ((at_us % 86400000000) + 86400000000) % 86400000000) / 86400000000 AS day
    FROM measure_entries
) e GROUP BY member_id, measure, day;

-- A refund reads the lots of its order in lot order: with lot_no in the index the order
-- comes from it, and no planner prefers the member's whole run of lots to a sort.
DROP INDEX point_lots_order;
CREATE INDEX point_lots_order ON point_lots (member_id, order_id, lot_no) WHERE order_id IS NOT NULL;

-- Periodic grants find the members whose tier changed in a window, whatever their tier now.
CREATE INDEX tier_history_at ON tier_history (at_us);
