-- Keys an operator can tell apart, let expire, and see in use.
ALTER TABLE api_keys ADD COLUMN label TEXT;
ALTER TABLE api_keys ADD COLUMN expires_at_us INTEGER;
-- Recorded at most once a minute per key and process.
ALTER TABLE api_keys ADD COLUMN last_used_at_us INTEGER;
