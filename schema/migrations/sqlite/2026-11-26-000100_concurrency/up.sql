-- Several workers at once (see engine/alfred/src/run.rs for the full argument).
--
-- Optimistic concurrency: a worker loads a conversation and the household data, runs the
-- pure engine without holding any lock, and commits only if neither changed meanwhile;
-- otherwise it reruns the event on fresh state. No lost updates, no long locks.

-- Compare-and-swap version of each conversation.
ALTER TABLE conversations ADD COLUMN version BIGINT NOT NULL DEFAULT 0;

-- One row: bumped by every commit that changes lists or records. Also lets a worker keep
-- the household data cached until someone changes it.
CREATE TABLE household_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO household_version (id, version) VALUES (1, 0);

-- Per-sender arrival order. The webhook's queue push numbers each sender's messages
-- (queue_seq on the SQL queue, a Redis hash on Redis); a worker handles message n of a
-- sender only after n-1 (bounded wait), and records it here in the event's transaction.
-- `sender` is a hash of the WhatsApp id, never the number itself.
CREATE TABLE inbound_order (
    sender     TEXT PRIMARY KEY,
    last_seq   BIGINT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- The SQL queue's per-stream, per-sender counters (Redis keeps them in a hash).
CREATE TABLE queue_seq (
    queue    TEXT NOT NULL,
    sender   TEXT NOT NULL,
    last_seq BIGINT NOT NULL,
    PRIMARY KEY (queue, sender)
);

-- A reply to someone who is not a member (ALFRED_UNKNOWN_SENDERS=reply) has no member to
-- look an address up for: the address it goes to (`+<wa_id>` or `user:<user id>`).
ALTER TABLE outbox ADD COLUMN to_address TEXT NULL;
