-- A member's personal data erased: when, so that reads and the export can say so.
ALTER TABLE members ADD COLUMN erased_at_us INTEGER;
