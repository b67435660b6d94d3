-- The 24-hour customer-service window (see docs/time.md).
-- When the member last wrote: free-form messages may go out until 24 hours later.
ALTER TABLE conversations ADD COLUMN last_inbound_at TIMESTAMP NULL;
-- What the send does outside the window: {"fallback": OutMessage|null, "outside_window": "defer"|"drop"}
-- as JSON; NULL means no fallback and the default policy (defer).
ALTER TABLE outbox ADD COLUMN fallback TEXT NULL;
-- Set while a row is parked until its member writes again (policy `defer`).
ALTER TABLE outbox ADD COLUMN deferred_at TIMESTAMP NULL;
-- What the window rule did to the row: `template` (the fallback was sent instead),
-- `deferred`, `dropped`, `replaced` (Meta reported the window closed after the send;
-- a new row carries the fallback or the deferred copy). NULL: sent as written.
ALTER TABLE outbox ADD COLUMN window_action TEXT NULL;
