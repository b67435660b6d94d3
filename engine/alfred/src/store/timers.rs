//! Timer reads. Timers are written by `commit_event` (`StartTimer` / `CancelTimer`);
//! the scheduler that leases and fires them comes later and will add its own queries
//! (the `locked_until` / `locked_by` columns are there for it).

use alfred_core::event::TimerSpec;
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::conn::from_db;
use super::schema::timers;
use super::{Result, Store};

impl Store {
    /// Every stored timer, soonest first (ties by id, so the order is stable).
    pub fn pending_timers(&self) -> Result<Vec<TimerSpec>> {
        let mut conn = self.pool.get()?;
        let rows: Vec<(String, String, NaiveDateTime, String)> = timers::table
            .order((timers::fire_at, timers::id))
            .select((timers::id, timers::member, timers::fire_at, timers::fired))
            .load(&mut *conn)?;
        rows.into_iter()
            .map(|(id, member, fire_at, fired)| {
                Ok(TimerSpec {
                    id,
                    member,
                    fire_at: from_db(fire_at),
                    fired: serde_json::from_str(&fired)?,
                })
            })
            .collect()
    }
}
