-- The scheduler's claims (both backends describe the same tables; see the init migration).

-- One row per (schedule, slot) the scheduler has handled. The primary key is the claim:
-- a scheduler fires a slot only if its INSERT ... ON CONFLICT DO NOTHING inserted the
-- row, so several scheduler processes fire each slot once. `schedule` is "flow#trigger"
-- (plus "@Zone" for `timezone: member`); the newest row is the schedule's cursor.
CREATE TABLE schedule_slots (
    schedule     TEXT NOT NULL,
    slot         TIMESTAMP NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('running', 'done', 'skipped')),
    claimed_by   TEXT NOT NULL,
    claimed_at   TIMESTAMP NOT NULL,
    locked_until TIMESTAMP NULL,       -- lease of a running slot; NULL = queued behind an older one
    locked_by    TEXT NULL,
    finished_at  TIMESTAMP NULL,
    PRIMARY KEY (schedule, slot)
);
CREATE INDEX schedule_slots_status_idx ON schedule_slots (schedule, status);

-- One row per member a slot has run for, written in the same transaction as that
-- member's run: a fan-out resumed after a crash skips (and cannot repeat) these members.
CREATE TABLE schedule_runs (
    schedule TEXT NOT NULL,            -- "flow#trigger"
    slot     TIMESTAMP NOT NULL,
    member   TEXT NOT NULL,
    run_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (schedule, slot, member)
);
