//! Timer reads and the scheduler's timer claims. Timers are written by `commit_event`
//! (`StartTimer` / `CancelTimer`) and consumed by it when they fire (`Fired::Timer`).
//!
//! Claiming is a lease (`locked_until` / `locked_by`): the scheduler that holds it runs
//! the timer's event, whose commit deletes the row. Postgres picks the rows with
//! `FOR UPDATE SKIP LOCKED`, so concurrent schedulers never wait on each other and never
//! pick the same row; SQLite serialises writers (`BEGIN IMMEDIATE`), so the same
//! select-then-lease is atomic there. A scheduler that dies holding a lease only delays
//! its timers until the lease expires.

use alfred_core::event::TimerSpec;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use diesel::prelude::*;

use super::conn::{AnyConnection, from_db, to_db, write_tx};
use super::schema::timers;
use super::{Result, Store, StoreError};

type TimerRow = (String, String, NaiveDateTime, String);

impl Store {
    /// Every stored timer, soonest first (ties by id, so the order is stable).
    pub fn pending_timers(&self) -> Result<Vec<TimerSpec>> {
        let mut conn = self.pool.get()?;
        let rows: Vec<TimerRow> = timers::table
            .order((timers::fire_at, timers::id))
            .select((timers::id, timers::member, timers::fire_at, timers::fired))
            .load(&mut *conn)?;
        rows.into_iter().map(to_spec).collect()
    }

    /// Leases up to `limit` timers due at `now` (`fire_at <= now`, no live lease) to
    /// `owner` until `now + lease`, soonest first, and returns them. Overdue timers (a
    /// restart after downtime) are due like any other and fire once, now.
    pub fn claim_due_timers(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease: TimeDelta,
        limit: i64,
    ) -> Result<Vec<TimerSpec>> {
        let (at, until) = (to_db(now), to_db(now + lease));
        let mut conn = self.pool.get()?;
        let rows: Vec<TimerRow> = write_tx(&mut conn, |conn| {
            let due = timers::fire_at
                .le(at)
                .and(timers::locked_until.is_null().or(timers::locked_until.lt(at)));
            let pick = timers::table
                .filter(due)
                .order((timers::fire_at, timers::id))
                .limit(limit)
                .select(timers::id);
            let ids: Vec<String> = match conn {
                AnyConnection::Postgresql(c) => pick.for_update().skip_locked().load(c)?,
                AnyConnection::Sqlite(c) => pick.load(c)?,
            };
            if ids.is_empty() {
                return Ok::<_, StoreError>(Vec::new());
            }
            diesel::update(timers::table.filter(timers::id.eq_any(&ids)))
                .set((timers::locked_until.eq(Some(until)), timers::locked_by.eq(Some(owner))))
                .execute(conn)?;
            Ok(timers::table
                .filter(timers::id.eq_any(&ids))
                .order((timers::fire_at, timers::id))
                .select((timers::id, timers::member, timers::fire_at, timers::fired))
                .load(conn)?)
        })?;
        rows.into_iter().map(to_spec).collect()
    }
}

fn to_spec((id, member, fire_at, fired): TimerRow) -> Result<TimerSpec> {
    Ok(TimerSpec {
        id,
        member,
        fire_at: from_db(fire_at),
        fired: serde_json::from_str(&fired)?,
    })
}
