//! The sender's claim on an outbox row, and the per-recipient pacing state.
//!
//! A row is sent only by the sender that claimed it: [`Store::claim_outbox`] takes a
//! lease (`claimed_until`, `claimed_by`) with one conditional UPDATE, so of two senders
//! that got the same id at once exactly one owns it. `mark_sent` / `mark_retry` /
//! `mark_dead` clear the lease; a sender that dies leaves it to expire.
//!
//! Order per member: a row is claimable only if no **older** row of the same member is
//! still open (`pending` or `failed`, claimed or not). So a row in retry backoff holds
//! back its successors, and several senders cannot reorder one member's messages. A
//! refused row gets `next_attempt_at` (see [`Store::defer_outbox`]) and the retry sweep
//! re-publishes it; nothing is dropped. Because claims of one member are serialized this
//! way, the member's pacing state (`recipient_pacing`) is only ever written by the one
//! sender holding that member's oldest row.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::conn::{from_db, per_backend, to_db, write_tx};
use super::outbox::{OPEN, RawOutbox};
use super::schema::{outbox, recipient_pacing};
use super::{OutboxRow, Result, Store, StoreError};

/// How long a refused row waits before it is tried again when nothing better is known
/// (an older row of the member is queued but not claimed yet, or a lost claim race).
pub const HOLD_RECHECK: chrono::Duration = chrono::Duration::seconds(2);

/// What [`Store::claim_outbox`] found.
#[derive(Clone, Debug, PartialEq)]
pub enum Claim {
    /// This sender owns the row until the lease ends: send it, then mark it.
    Owned(Box<OutboxRow>),
    /// Nothing to send: no such row, or it is already `sent` or `dead`.
    Done,
    /// Not sendable before this time: its retry time has not come, another sender holds
    /// it, or an older row of the same member is unsent.
    Held(DateTime<Utc>),
}

enum Refused {
    Done,
    Held(DateTime<Utc>),
    Db(StoreError),
}

impl From<diesel::result::Error> for Refused {
    fn from(e: diesel::result::Error) -> Self {
        Refused::Db(e.into())
    }
}

impl Store {
    /// Claims row `id` for sender `by` until `now + lease`, if it is open, due, not
    /// claimed by a live lease, and the oldest open row of its member.
    pub fn claim_outbox(&self, id: i64, by: &str, now: DateTime<Utc>, lease: chrono::Duration) -> Result<Claim> {
        let mut conn = self.pool.get()?;
        let db_now = to_db(now);
        let run = write_tx(&mut conn, |conn| {
            let raw: Option<RawOutbox> = outbox::table
                .find(id)
                .select(RawOutbox::as_select())
                .first(conn)
                .optional()?;
            let row = raw.ok_or(Refused::Done)?.into_row().map_err(Refused::Db)?;
            if !OPEN.contains(&row.status.as_str()) {
                return Err(Refused::Done);
            }
            if let Some(at) = row.next_attempt_at
                && at > now
            {
                return Err(Refused::Held(at));
            }
            let (claimed_until,): (Option<NaiveDateTime>,) =
                outbox::table.find(id).select((outbox::claimed_until,)).first(conn)?;
            if let Some(until) = claimed_until
                && until >= db_now
            {
                return Err(Refused::Held(from_db(until)));
            }
            // A reply to a non-member has no member: its recipient is its address.
            let same_recipient: Box<dyn BoxableExpression<outbox::table, _, SqlType = diesel::sql_types::Bool>> =
                match &row.to_address {
                    Some(address) => Box::new(outbox::to_address.eq(address.clone()).assume_not_null()),
                    None => Box::new(outbox::member.eq(row.member.clone())),
                };
            let older: Option<(Option<NaiveDateTime>, Option<NaiveDateTime>)> = outbox::table
                .filter(same_recipient)
                .filter(outbox::id.lt(id))
                // A row parked until the member writes (window closed, `defer`) does not
                // hold back later ones: it is woken and re-published, in order, when the
                // member writes.
                .filter(outbox::deferred_at.is_null())
                .filter(outbox::status.eq_any(OPEN))
                .order(outbox::id)
                .select((outbox::next_attempt_at, outbox::claimed_until))
                .first(conn)
                .optional()?;
            if let Some((next, claimed)) = older {
                // Come back when the blocker can be done at the earliest; the sweep's
                // (next_attempt_at, id) order then brings the blocker first.
                let at = [next, claimed]
                    .into_iter()
                    .flatten()
                    .map(from_db)
                    .fold(now + HOLD_RECHECK, DateTime::max);
                return Err(Refused::Held(at));
            }
            let n = diesel::update(
                outbox::table
                    .find(id)
                    .filter(outbox::status.eq_any(OPEN))
                    .filter(outbox::claimed_until.is_null().or(outbox::claimed_until.lt(db_now))),
            )
            .set((
                outbox::claimed_until.eq(Some(to_db(now + lease))),
                outbox::claimed_by.eq(Some(by)),
            ))
            .execute(conn)?;
            if n == 1 {
                Ok(row)
            } else {
                Err(Refused::Held(now + HOLD_RECHECK))
            }
        });
        match run {
            Ok(row) => Ok(Claim::Owned(Box::new(row))),
            Err(Refused::Done) => Ok(Claim::Done),
            Err(Refused::Held(at)) => Ok(Claim::Held(at)),
            Err(Refused::Db(e)) => Err(e),
        }
    }

    /// Asks the retry sweep to bring an open row back at `at` or later (a refused claim,
    /// or a pacing wait too long to sit out). Never moves a retry time earlier: a
    /// concurrent `mark_retry` by the row's owner keeps its back-off. With `release_by`,
    /// also ends that sender's own lease on the row. Not an attempt: `attempts` is
    /// unchanged. Returns whether the row is still open.
    pub fn defer_outbox(&self, id: i64, at: DateTime<Utc>, release_by: Option<&str>) -> Result<bool> {
        let mut conn = self.pool.get()?;
        write_tx(&mut conn, |conn| {
            let current: Option<Option<NaiveDateTime>> = outbox::table
                .find(id)
                .filter(outbox::status.eq_any(OPEN))
                .select(outbox::next_attempt_at)
                .first(conn)
                .optional()?;
            let Some(current) = current else {
                return Ok(false);
            };
            let at = current.map_or(to_db(at), |c| c.max(to_db(at)));
            diesel::update(outbox::table.find(id))
                .set(outbox::next_attempt_at.eq(Some(at)))
                .execute(conn)?;
            if let Some(by) = release_by {
                diesel::update(outbox::table.find(id).filter(outbox::claimed_by.eq(by)))
                    .set((
                        outbox::claimed_until.eq(None::<NaiveDateTime>),
                        outbox::claimed_by.eq(None::<String>),
                    ))
                    .execute(conn)?;
            }
            Ok(true)
        })
    }

    /// After row `id` is done (sent or dead): if the member's next open row was held back
    /// behind it (`pending` with a `next_attempt_at`), it becomes due now. Returns its
    /// id, for the caller to publish, so held bubbles need not wait for a sweep round.
    pub fn release_successor(&self, id: i64, now: DateTime<Utc>) -> Result<Option<i64>> {
        let mut conn = self.pool.get()?;
        write_tx(&mut conn, |conn| {
            let Some(member) = outbox::table
                .find(id)
                .select(outbox::member)
                .first::<String>(conn)
                .optional()?
            else {
                return Ok(None);
            };
            let next: Option<(i64, String, Option<NaiveDateTime>)> = outbox::table
                .filter(outbox::member.eq(&member))
                .filter(outbox::status.eq_any(OPEN))
                .order(outbox::id)
                .select((outbox::id, outbox::status, outbox::next_attempt_at))
                .first(conn)
                .optional()?;
            match next {
                Some((next, status, Some(_))) if status == "pending" => {
                    diesel::update(outbox::table.find(next))
                        .set(outbox::next_attempt_at.eq(Some(to_db(now))))
                        .execute(conn)?;
                    Ok(Some(next))
                }
                _ => Ok(None),
            }
        })
    }

    /// The member's pair-rate state: the GCRA theoretical arrival time, if any.
    pub fn recipient_tat(&self, member: &str) -> Result<Option<DateTime<Utc>>> {
        let mut conn = self.pool.get()?;
        let tat: Option<NaiveDateTime> = recipient_pacing::table
            .find(member)
            .select(recipient_pacing::tat)
            .first(&mut *conn)
            .optional()?;
        Ok(tat.map(from_db))
    }

    /// Stores the member's pair-rate state. Only the sender holding the member's oldest
    /// open row calls this, so there is no concurrent writer to merge with.
    pub fn set_recipient_tat(&self, member: &str, tat: DateTime<Utc>) -> Result<()> {
        let mut conn = self.pool.get()?;
        let tat = to_db(tat);
        per_backend!(&mut *conn, |c| diesel::insert_into(recipient_pacing::table)
            .values((recipient_pacing::member.eq(member), recipient_pacing::tat.eq(tat)))
            .on_conflict(recipient_pacing::member)
            .do_update()
            .set(recipient_pacing::tat.eq(tat))
            .execute(c))?;
        Ok(())
    }
}
