-- The sender's claim: a lease on an outbox row taken atomically before the Graph call,
-- so two senders that got the same row id (a worker publish and a sweep re-publish)
-- never both send it. An expired lease (a sender that died) may be taken over.
ALTER TABLE outbox ADD COLUMN claimed_until TIMESTAMP NULL;
ALTER TABLE outbox ADD COLUMN claimed_by TEXT NULL;
-- "Is there an older unsent row for this member?" runs before every claim.
CREATE INDEX outbox_member_status_idx ON outbox (member, status, id);

-- Per-recipient pair-rate state, shared by every sender process: the GCRA theoretical
-- arrival time of the member's next message (see docs/time.md, Pacing).
CREATE TABLE recipient_pacing (
    member TEXT PRIMARY KEY,           -- member name (not a phone number)
    tat    TIMESTAMP NOT NULL
);
