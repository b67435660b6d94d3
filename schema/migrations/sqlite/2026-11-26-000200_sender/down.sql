DROP TABLE IF EXISTS recipient_pacing;
DROP INDEX IF EXISTS outbox_member_status_idx;
ALTER TABLE outbox DROP COLUMN claimed_by;
ALTER TABLE outbox DROP COLUMN claimed_until;
