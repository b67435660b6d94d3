//! The scheduler's slot claims (`schedule_slots`) and fan-out markers (`schedule_runs`).
//!
//! A slot is claimed by inserting its `(schedule, slot)` row: the primary key makes
//! exactly one scheduler win, however many race. The winner holds a lease on it while
//! it runs the slot for each member; each member's run is marked in `schedule_runs` by
//! `commit_event` in that member's own transaction. A scheduler that dies mid-way leaves
//! the slot `running`; once its lease expires another one takes the slot over and runs
//! only the members not marked yet.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use diesel::dsl::max;
use diesel::prelude::*;

use super::conn::{from_db, per_backend, to_db};
use super::schema::{schedule_runs, schedule_slots};
use super::{Result, Store};

/// A slot that is claimed but whose fan-out has not finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningSlot {
    /// The slot.
    pub slot: DateTime<Utc>,
    /// Lease expiry; `None` while queued behind an older slot.
    pub locked_until: Option<DateTime<Utc>>,
    /// Lease holder.
    pub locked_by: Option<String>,
}

/// A `schedule_slots` row to insert.
struct NewSlot<'a> {
    schedule: &'a str,
    slot: DateTime<Utc>,
    status: &'a str,
    owner: &'a str,
    now: DateTime<Utc>,
    lease: Option<DateTime<Utc>>,
}

impl Store {
    /// The newest slot of `schedule` that was claimed or skipped: where the next
    /// [`alfred_core::schedule::due_slots`] starts.
    pub fn last_schedule_slot(&self, schedule: &str) -> Result<Option<DateTime<Utc>>> {
        let mut conn = self.pool.get()?;
        let last: Option<NaiveDateTime> = schedule_slots::table
            .filter(schedule_slots::schedule.eq(schedule))
            .select(max(schedule_slots::slot))
            .first(&mut *conn)?;
        Ok(last.map(from_db))
    }

    /// Inserts the slot row as `running` (claimed by `owner`); `lease` set means leased to
    /// `owner` until then, `None` means queued. Returns whether this call won the claim.
    pub fn claim_schedule_slot(
        &self,
        schedule: &str,
        slot: DateTime<Utc>,
        owner: &str,
        now: DateTime<Utc>,
        lease: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        self.insert_slot(NewSlot {
            schedule,
            slot,
            status: "running",
            owner,
            now,
            lease,
        })
    }

    /// Records a slot that will not fire (too late, or overlapping a running one), so the
    /// schedule's cursor moves past it. Returns whether the row was new.
    pub fn skip_schedule_slot(
        &self,
        schedule: &str,
        slot: DateTime<Utc>,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.insert_slot(NewSlot {
            schedule,
            slot,
            status: "skipped",
            owner,
            now,
            lease: None,
        })
    }

    fn insert_slot(&self, row: NewSlot<'_>) -> Result<bool> {
        let NewSlot {
            schedule,
            slot,
            status,
            owner,
            now,
            lease,
        } = row;
        // A lease always belongs to the claimer; a queued or skipped row has none.
        let locked_by = lease.map(|_| owner);
        let mut conn = self.pool.get()?;
        let inserted = per_backend!(&mut *conn, |c| diesel::insert_into(schedule_slots::table)
            .values((
                schedule_slots::schedule.eq(schedule),
                schedule_slots::slot.eq(to_db(slot)),
                schedule_slots::status.eq(status),
                schedule_slots::claimed_by.eq(owner),
                schedule_slots::claimed_at.eq(to_db(now)),
                schedule_slots::locked_until.eq(lease.map(to_db)),
                schedule_slots::locked_by.eq(locked_by),
                schedule_slots::finished_at.eq(None::<NaiveDateTime>),
            ))
            .on_conflict_do_nothing()
            .execute(c))?;
        Ok(inserted == 1)
    }

    /// Slots of `schedule` still `running`, oldest first.
    pub fn running_schedule_slots(&self, schedule: &str) -> Result<Vec<RunningSlot>> {
        let mut conn = self.pool.get()?;
        let rows: Vec<(NaiveDateTime, Option<NaiveDateTime>, Option<String>)> = schedule_slots::table
            .filter(
                schedule_slots::schedule
                    .eq(schedule)
                    .and(schedule_slots::status.eq("running")),
            )
            .order(schedule_slots::slot)
            .select((
                schedule_slots::slot,
                schedule_slots::locked_until,
                schedule_slots::locked_by,
            ))
            .load(&mut *conn)?;
        Ok(rows
            .into_iter()
            .map(|(slot, until, by)| RunningSlot {
                slot: from_db(slot),
                locked_until: until.map(from_db),
                locked_by: by,
            })
            .collect())
    }

    /// Takes (or renews) the lease on a running slot: succeeds if it is queued, its lease
    /// expired, or `owner` holds it already. One conditional UPDATE, so two schedulers
    /// cannot both take it.
    pub fn lease_schedule_slot(
        &self,
        schedule: &str,
        slot: DateTime<Utc>,
        owner: &str,
        now: DateTime<Utc>,
        lease: TimeDelta,
    ) -> Result<bool> {
        let (at, until) = (to_db(now), to_db(now + lease));
        let mut conn = self.pool.get()?;
        let free = schedule_slots::locked_until
            .is_null()
            .or(schedule_slots::locked_until.lt(at))
            .or(schedule_slots::locked_by.eq(owner));
        let updated = diesel::update(
            schedule_slots::table.filter(
                schedule_slots::schedule
                    .eq(schedule)
                    .and(schedule_slots::slot.eq(to_db(slot)))
                    .and(schedule_slots::status.eq("running"))
                    .and(free),
            ),
        )
        .set((
            schedule_slots::locked_until.eq(Some(until)),
            schedule_slots::locked_by.eq(Some(owner)),
        ))
        .execute(&mut *conn)?;
        Ok(updated == 1)
    }

    /// Marks a running slot whose fan-out `owner` completed as `done`.
    pub fn finish_schedule_slot(
        &self,
        schedule: &str,
        slot: DateTime<Utc>,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut conn = self.pool.get()?;
        let updated = diesel::update(
            schedule_slots::table.filter(
                schedule_slots::schedule
                    .eq(schedule)
                    .and(schedule_slots::slot.eq(to_db(slot)))
                    .and(schedule_slots::status.eq("running"))
                    .and(schedule_slots::locked_by.eq(owner)),
            ),
        )
        .set((
            schedule_slots::status.eq("done"),
            schedule_slots::finished_at.eq(Some(to_db(now))),
            schedule_slots::locked_until.eq(None::<NaiveDateTime>),
        ))
        .execute(&mut *conn)?;
        Ok(updated == 1)
    }

    /// Members a slot has already run for (`schedule` is the `flow#trigger` run key).
    pub fn schedule_members_done(&self, schedule: &str, slot: DateTime<Utc>) -> Result<HashSet<String>> {
        let mut conn = self.pool.get()?;
        let members: Vec<String> = schedule_runs::table
            .filter(
                schedule_runs::schedule
                    .eq(schedule)
                    .and(schedule_runs::slot.eq(to_db(slot))),
            )
            .select(schedule_runs::member)
            .load(&mut *conn)?;
        Ok(members.into_iter().collect())
    }

    /// Slot rows of `schedule` as `(slot, status)`, oldest first (for tests and `trace`).
    pub fn schedule_slot_history(&self, schedule: &str) -> Result<Vec<(DateTime<Utc>, String)>> {
        let mut conn = self.pool.get()?;
        let rows: Vec<(NaiveDateTime, String)> = schedule_slots::table
            .filter(schedule_slots::schedule.eq(schedule))
            .order(schedule_slots::slot)
            .select((schedule_slots::slot, schedule_slots::status))
            .load(&mut *conn)?;
        Ok(rows.into_iter().map(|(s, st)| (from_db(s), st)).collect())
    }
}
