-- Cost follows what is open, not history: a spend reads the available lots in the order
-- it draws them, a page at a time, and a refund reads the lots of its order; neither reads
-- every lot a member ever earned.
CREATE INDEX point_lots_spend_order ON point_lots
    (member_id, COALESCE(expires_at_us, 9223372036854775807), earned_at_us, lot_no)
    WHERE state = 'available' AND remaining > 0;
CREATE INDEX point_lots_order ON point_lots (member_id, order_id) WHERE order_id IS NOT NULL;
-- What the clock made due for one member: pending lots by the end of their window, open
-- lots by their expiry.
CREATE INDEX point_lots_member_pending ON point_lots (member_id, available_at_us)
    WHERE state = 'pending';
CREATE INDEX point_lots_member_expiring ON point_lots (member_id, expires_at_us)
    WHERE state <> 'expired' AND expires_at_us IS NOT NULL;
