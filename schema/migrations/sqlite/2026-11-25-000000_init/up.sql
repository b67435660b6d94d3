-- Alfred-Home initial schema, SQLite flavour.
--
-- Its twin in ../../postgres/2026-11-25-000000_init must describe the same tables with the
-- same names and column types: the code reads both through one diesel `table!` schema
-- (engine/alfred/src/store/schema.rs), and every store test runs on both backends.
-- Only types diesel's MultiBackend knows are used: TEXT, INTEGER, BIGINT, TIMESTAMP
-- (always UTC, without time zone). JSON is stored as TEXT, for the same reason.
-- Differences from Postgres: BIGSERIAL becomes INTEGER PRIMARY KEY AUTOINCREMENT
-- (AUTOINCREMENT so that an id, once published to a queue, is never reused after a
-- delete); diesel reads both as BIGINT.

-- One row per member: the conversation stack the pure engine resumes from.
CREATE TABLE conversations (
    member     TEXT PRIMARY KEY,
    state      TEXT NOT NULL,          -- ConversationState as JSON
    updated_at TIMESTAMP NOT NULL
);

-- The dedupe marker: a wamid present here was handled, so a redelivery is a no-op.
-- Written in the same transaction as the effects, so "handled" and "marked" cannot diverge.
CREATE TABLE processed_inbound (
    wamid        TEXT PRIMARY KEY,
    member       TEXT NOT NULL,
    processed_at TIMESTAMP NOT NULL
);

-- The transactional outbox: rows are committed with the event, then published to the
-- outbound queue; the sender records what WhatsApp did with each one.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    member          TEXT NOT NULL,     -- recipient member name (not a phone number)
    message         TEXT NOT NULL,     -- OutMessage as JSON
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'failed', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NULL,
    last_error      TEXT NULL,
    error_code      BIGINT NULL,
    wamid           TEXT NULL UNIQUE,  -- the UNIQUE constraint is also the lookup index for status webhooks
    delivery        TEXT NULL
                    CHECK (delivery IN ('sent', 'delivered', 'read', 'played', 'failed')),
    inbound_wamid   TEXT NULL,
    created_at      TIMESTAMP NOT NULL,
    published_at    TIMESTAMP NULL,
    sent_at         TIMESTAMP NULL,
    updated_at      TIMESTAMP NOT NULL
);
-- The re-publish sweep looks for pending rows with no published_at.
CREATE INDEX outbox_status_published_idx ON outbox (status, published_at);

-- Household lists. `pos` keeps "the order items were first added" (HouseholdData's
-- order): an upsert keeps the old pos, a new key gets max(pos) + 1 of its list.
CREATE TABLE list_items (
    list     TEXT NOT NULL,
    key      TEXT NOT NULL,
    name     TEXT NOT NULL,
    qty      BIGINT NOT NULL,          -- u32 in the core: BIGINT holds every value
    added_by TEXT NOT NULL,
    added_at TIMESTAMP NOT NULL,
    pos      BIGINT NOT NULL,
    PRIMARY KEY (list, key)
);

-- Household record collections; `pos` keeps creation order like list_items.pos.
CREATE TABLE records (
    collection TEXT NOT NULL,
    id         TEXT NOT NULL,
    fields     TEXT NOT NULL,          -- JSON object
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    pos        BIGINT NOT NULL,
    PRIMARY KEY (collection, id)
);

-- Durable timers. locked_until/locked_by are the scheduler's lease, so that several
-- scheduler processes fire each timer once.
CREATE TABLE timers (
    id           TEXT PRIMARY KEY,
    member       TEXT NOT NULL,
    fire_at      TIMESTAMP NOT NULL,
    fired        TEXT NOT NULL,        -- TimerFired as JSON
    created_at   TIMESTAMP NOT NULL,
    locked_until TIMESTAMP NULL,
    locked_by    TEXT NULL
);
CREATE INDEX timers_fire_at_idx ON timers (fire_at);

-- The embedded SQL-table queue (used when there is no Redis). Payloads are webhook
-- bodies, which are UTF-8 JSON, so TEXT is enough.
CREATE TABLE queue_jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    queue        TEXT NOT NULL,
    payload      TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    run_at       TIMESTAMP NOT NULL,
    locked_until TIMESTAMP NULL,
    locked_by    TEXT NULL,
    status       TEXT NOT NULL DEFAULT 'ready' CHECK (status IN ('ready', 'dead')),
    last_error   TEXT NULL,
    created_at   TIMESTAMP NOT NULL
);
CREATE INDEX queue_jobs_fetch_idx ON queue_jobs (queue, status, run_at);
