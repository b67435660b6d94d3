ALTER TABLE outbox DROP COLUMN window_action;
ALTER TABLE outbox DROP COLUMN deferred_at;
ALTER TABLE outbox DROP COLUMN fallback;
ALTER TABLE conversations DROP COLUMN last_inbound_at;
