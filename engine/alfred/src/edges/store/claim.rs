//! The sender's claim on an outbox row, and the per-recipient pacing state.
//!
//! A row is sent only by the sender that claimed it: [`Store::claim_outbox`] takes a
//! lease (`claimed_until`, `claimed_by`) with one conditional UPDATE, so of two senders
//! that got the same id at once exactly one owns it. That UPDATE carries every condition
//! (open, due, not leased, oldest open row of its recipient) and returns the row, so a
//! claim that succeeds costs two statements: one read of what the send decision needs
//! (the recipient key, the member's last inbound time and pair-rate state) and the
//! UPDATE. Only a refused claim takes a transaction, to say why and until when. `mark_sent` / `mark_retry` /
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

use super::conn::{AnyConnection, from_db, per_backend, to_db, write_tx};
use super::outbox::{OPEN, RawOutbox};
use super::schema::{conversations, outbox, recipient_pacing};
use super::{OutboxRow, Result, Store, StoreError};

// Other rows of the outbox, in subqueries of statements on it.
diesel::alias!(outbox as earlier: EarlierOutbox, outbox as done: DoneOutbox);

/// How long a refused row waits before it is tried again when nothing better is known
/// (an older row of the member is queued but not claimed yet, or a lost claim race).
pub const HOLD_RECHECK: chrono::Duration = chrono::Duration::seconds(2);

/// What [`Store::claim_outbox`] found.
#[derive(Clone, Debug, PartialEq)]
pub enum Claim {
    /// This sender owns the row until the lease ends: send it, then mark it.
    Owned(Box<Claimed>),
    /// Nothing to send: no such row, or it is already `sent` or `dead`.
    Done,
    /// Not sendable before this time: its retry time has not come, another sender holds
    /// it, or an older row of the same member is unsent.
    Held(DateTime<Utc>),
}

/// A claimed row with what the send decision needs, read in the claim's statements.
#[derive(Clone, Debug, PartialEq)]
pub struct Claimed {
    /// The row, as the claim left it.
    pub row: OutboxRow,
    /// When the member last wrote (their 24-hour window), if ever.
    pub last_inbound: Option<DateTime<Utc>>,
    /// The member's pair-rate state (GCRA theoretical arrival time), if any.
    pub tat: Option<DateTime<Utc>>,
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
    /// claimed by a live lease, and the oldest open row of its recipient.
    pub fn claim_outbox(&self, id: i64, by: &str, now: DateTime<Utc>, lease: chrono::Duration) -> Result<Claim> {
        let mut conn = self.pool.get()?;
        let db_now = to_db(now);
        // The recipient key, the window and the pair rate in one read: the claim needs
        // the key, the send decision the rest.
        let head: Option<ClaimHead> = outbox::table
            .left_join(conversations::table.on(conversations::member.eq(outbox::member)))
            .left_join(recipient_pacing::table.on(recipient_pacing::member.eq(outbox::member)))
            .filter(outbox::id.eq(id))
            .select((
                outbox::member,
                outbox::to_address,
                conversations::last_inbound_at.nullable(),
                recipient_pacing::tat.nullable(),
            ))
            .first(&mut *conn)
            .optional()?;
        let Some((member, to_address, last_inbound, tat)) = head else {
            return Ok(Claim::Done);
        };
        let claimed = |row: OutboxRow| {
            Claim::Owned(Box::new(Claimed {
                row,
                last_inbound: last_inbound.map(from_db),
                tat: tat.map(from_db),
            }))
        };
        // Same recipient: a member's rows by name, a non-member's (`member` empty) by
        // address (see `same_recipient`), written without boxing for the subquery.
        let older = earlier
            .filter(earlier.field(outbox::member).eq(member.clone()))
            .filter(
                earlier.field(outbox::member).ne("").or(earlier
                    .field(outbox::to_address)
                    .eq(to_address.clone().unwrap_or_default())),
            )
            .filter(earlier.field(outbox::id).lt(id))
            // A row parked until the member writes (window closed, `defer`) does not
            // hold back later ones: it is woken and re-published, in order, when the
            // member writes.
            .filter(earlier.field(outbox::deferred_at).is_null())
            .filter(earlier.field(outbox::status).eq_any(OPEN))
            .select(earlier.field(outbox::id));
        let raw: Option<RawOutbox> = diesel::update(
            outbox::table
                .find(id)
                .filter(outbox::status.eq_any(OPEN))
                .filter(outbox::next_attempt_at.is_null().or(outbox::next_attempt_at.le(db_now)))
                .filter(outbox::claimed_until.is_null().or(outbox::claimed_until.lt(db_now)))
                .filter(diesel::dsl::not(diesel::dsl::exists(older))),
        )
        .set((
            outbox::claimed_until.eq(Some(to_db(now + lease))),
            outbox::claimed_by.eq(Some(by)),
        ))
        .returning(<RawOutbox as Selectable<super::conn::MultiBackend>>::construct_selection())
        .get_result(&mut *conn)
        .optional()?;
        if let Some(raw) = raw {
            return Ok(claimed(raw.into_row()?));
        }
        // Refused (or raced): find out why, and claim after all if it has become possible.
        match claim_checked(&mut conn, id, by, now, lease) {
            Ok(row) => Ok(claimed(row)),
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

    /// Ends every lease sender `by` still holds on open rows: a stopping sender calls this
    /// last, so a row it claimed but did not finish is sendable again at once, by the
    /// next process, instead of after the whole lease. Returns how many were released.
    pub fn release_claims(&self, by: &str) -> Result<usize> {
        let mut conn = self.pool.get()?;
        Ok(diesel::update(
            outbox::table
                .filter(outbox::claimed_by.eq(by))
                .filter(outbox::status.eq_any(OPEN)),
        )
        .set((
            outbox::claimed_until.eq(None::<NaiveDateTime>),
            outbox::claimed_by.eq(None::<String>),
        ))
        .execute(&mut *conn)?)
    }

    /// After row `id` is done (sent or dead): if the member's next open row was held back
    /// behind it (`pending` with a `next_attempt_at`), it becomes due now. Returns its
    /// id, for the caller to publish, so held bubbles need not wait for a sweep round.
    pub fn release_successor(&self, id: i64, now: DateTime<Utc>) -> Result<Option<i64>> {
        let mut conn = self.pool.get()?;
        // One statement (this runs after every send): the member's first open row, if it
        // is a held `pending` one.
        let member = done
            .filter(done.field(outbox::id).eq(id))
            .select(done.field(outbox::member))
            .single_value();
        let first_open = earlier
            .filter(earlier.field(outbox::member).nullable().eq(member))
            .filter(earlier.field(outbox::status).eq_any(OPEN))
            .order(earlier.field(outbox::id))
            .limit(1)
            .select(earlier.field(outbox::id));
        let released: Option<i64> = diesel::update(
            outbox::table
                .filter(outbox::id.eq_any(first_open))
                .filter(outbox::status.eq("pending"))
                .filter(outbox::next_attempt_at.is_not_null()),
        )
        .set(outbox::next_attempt_at.eq(Some(to_db(now))))
        .returning(outbox::id)
        .get_result(&mut *conn)
        .optional()?;
        Ok(released)
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

/// The claim one condition at a time in a transaction, to tell `Done` from `Held` and
/// find the time to come back; claims the row after all if that has become possible.
fn claim_checked(
    conn: &mut AnyConnection,
    id: i64,
    by: &str,
    now: DateTime<Utc>,
    lease: chrono::Duration,
) -> std::result::Result<OutboxRow, Refused> {
    let db_now = to_db(now);
    write_tx(conn, |conn| {
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
        let older: Option<(Option<NaiveDateTime>, Option<NaiveDateTime>)> = outbox::table
            .filter(same_recipient(&row.member, row.to_address.as_deref()))
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
    })
}

/// Rows with the same recipient as a row of `member` / `to_address`: a member's rows by
/// name (stable when their number changes, and the same on rows stored before addresses
/// were), a non-member's by their address.
fn same_recipient(
    member: &str,
    to_address: Option<&str>,
) -> Box<dyn BoxableExpression<outbox::table, super::conn::MultiBackend, SqlType = diesel::sql_types::Bool>> {
    match (member, to_address) {
        ("", Some(address)) => Box::new(outbox::to_address.eq(address.to_owned()).assume_not_null()),
        _ => Box::new(outbox::member.eq(member.to_owned())),
    }
}

type ClaimHead = (String, Option<String>, Option<NaiveDateTime>, Option<NaiveDateTime>);
