//! The outbox after commit: publishing, sending, retrying, dead-lettering, and the
//! delivery states WhatsApp reports back.
//!
//! Life of a row: `commit_event` inserts it `pending` → the worker publishes its id to
//! the outbound queue and marks it published (a sweep re-publishes rows left
//! unpublished by a crash) → the sender marks it `sent` with the returned wamid, or
//! `failed` with a retry time, or `dead` with the reason → status webhooks set
//! `delivery`. Status transitions only leave `pending`/`failed`, so a row is recorded
//! as sent at most once, whatever the queue redelivers.

use alfred_core::event::{OutMessage, Outbound};
use alfred_core::window::{WindowDecision, WindowPolicy, decide};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use serde::{Deserialize, Serialize};

use super::conn::{AnyConnection, from_db, to_db, write_tx};
use super::schema::{conversations, outbox};
use super::{Result, Store, StoreError};

/// What a send does outside the recipient's 24-hour window (the `outbox.fallback` JSON).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowPlan {
    /// The template to send instead.
    #[serde(default)]
    pub fallback: Option<OutMessage>,
    /// Without a fallback: defer or drop.
    #[serde(default)]
    pub outside_window: WindowPolicy,
}

impl WindowPlan {
    /// The plan an engine send carries.
    pub fn of(out: &Outbound) -> Self {
        WindowPlan {
            fallback: out.fallback.clone(),
            outside_window: out.outside_window,
        }
    }

    /// JSON for the column; `None` for the default plan (no fallback, defer).
    pub fn to_json(&self) -> Result<Option<String>> {
        if *self == WindowPlan::default() {
            return Ok(None);
        }
        Ok(Some(serde_json::to_string(self)?))
    }

    /// The window decision for `message` at `now`, for a member who last wrote at
    /// `last_inbound` (`None`: never, or Meta says the window is closed).
    pub fn decide(
        &self,
        message: &OutMessage,
        last_inbound: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> WindowDecision {
        decide(message, self.fallback.as_ref(), self.outside_window, last_inbound, now)
    }
}

/// Where a row is in the sender's hands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboxStatus {
    /// Committed, not yet sent.
    Pending,
    /// The Graph API accepted it (see `wamid`).
    Sent,
    /// A retryable failure; due again at `next_attempt_at`.
    Failed,
    /// Will not be sent: dead-lettered with `error_code` / `last_error`.
    Dead,
}

impl OutboxStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Failed => "failed",
            OutboxStatus::Dead => "dead",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<OutboxStatus> {
        Some(match s {
            "pending" => OutboxStatus::Pending,
            "sent" => OutboxStatus::Sent,
            "failed" => OutboxStatus::Failed,
            "dead" => OutboxStatus::Dead,
            _ => return None,
        })
    }
}

/// What WhatsApp last reported about a sent message (status webhooks), in the order
/// they normally happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DeliveryState {
    /// Accepted by WhatsApp's servers.
    Sent,
    /// On the member's phone.
    Delivered,
    /// Read.
    Read,
    /// A voice message was played.
    Played,
    /// Failed after all; terminal.
    Failed,
}

impl DeliveryState {
    /// The name Meta uses (and we store).
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Sent => "sent",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Read => "read",
            DeliveryState::Played => "played",
            DeliveryState::Failed => "failed",
        }
    }

    /// Parses Meta's name.
    pub fn parse(s: &str) -> Option<DeliveryState> {
        Some(match s {
            "sent" => DeliveryState::Sent,
            "delivered" => DeliveryState::Delivered,
            "read" => DeliveryState::Read,
            "played" => DeliveryState::Played,
            "failed" => DeliveryState::Failed,
            _ => return None,
        })
    }

    const ALL: [DeliveryState; 5] = [
        DeliveryState::Sent,
        DeliveryState::Delivered,
        DeliveryState::Read,
        DeliveryState::Played,
        DeliveryState::Failed,
    ];
}

/// One outbox row as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxRow {
    /// Row id (what the outbound queue carries).
    pub id: i64,
    /// Recipient member name.
    pub member: String,
    /// The `OutMessage` JSON; see [`OutboxRow::out_message`]. Kept raw so that one
    /// undecodable row cannot break a sweep over many.
    pub message: String,
    /// Sender status.
    pub status: OutboxStatus,
    /// Send attempts so far (successful or not).
    pub attempts: i32,
    /// When a `failed` row is due again.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Reason of the last failure (send or delivery).
    pub last_error: Option<String>,
    /// Meta error code of the last failure.
    pub error_code: Option<i64>,
    /// The wamid WhatsApp gave the message.
    pub wamid: Option<String>,
    /// The latest delivery status webhook.
    pub delivery: Option<DeliveryState>,
    /// The inbound message that caused this reply, if any.
    pub inbound_wamid: Option<String>,
    /// Commit time.
    pub created_at: DateTime<Utc>,
    /// First publish to the outbound queue.
    pub published_at: Option<DateTime<Utc>>,
    /// When the Graph API accepted it.
    pub sent_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Where the message goes: `+<E.164>` or `user:<id>`, resolved when the row was
    /// committed (a roster change re-resolves open rows). `None` on rows written before
    /// addresses were stored: the sender then looks the member up. A reply to a
    /// non-member has an address and an empty `member`.
    pub to_address: Option<String>,
    /// [`WindowPlan`] JSON; `None` is the default plan.
    pub fallback: Option<String>,
    /// Parked until the member writes again.
    pub deferred_at: Option<DateTime<Utc>>,
    /// What the window rule did: `template`, `deferred`, `dropped`, `replaced`.
    pub window_action: Option<String>,
}

impl OutboxRow {
    /// A reply to a non-member (no member, only an address).
    pub fn is_stranger(&self) -> bool {
        self.member.is_empty()
    }

    /// The message to send.
    pub fn out_message(&self) -> Result<OutMessage> {
        Ok(serde_json::from_str(&self.message)?)
    }

    /// What to do outside the 24-hour window.
    pub fn window_plan(&self) -> Result<WindowPlan> {
        match &self.fallback {
            Some(json) => Ok(serde_json::from_str(json)?),
            None => Ok(WindowPlan::default()),
        }
    }
}

/// The row as diesel loads it (plain column types), converted by [`RawOutbox::into_row`].
#[derive(Queryable, Selectable)]
#[diesel(table_name = outbox)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(super) struct RawOutbox {
    id: i64,
    member: String,
    message: String,
    status: String,
    attempts: i32,
    next_attempt_at: Option<NaiveDateTime>,
    last_error: Option<String>,
    error_code: Option<i64>,
    wamid: Option<String>,
    delivery: Option<String>,
    inbound_wamid: Option<String>,
    created_at: NaiveDateTime,
    published_at: Option<NaiveDateTime>,
    sent_at: Option<NaiveDateTime>,
    updated_at: NaiveDateTime,
    to_address: Option<String>,
    fallback: Option<String>,
    deferred_at: Option<NaiveDateTime>,
    window_action: Option<String>,
}

impl RawOutbox {
    pub(super) fn into_row(self) -> Result<OutboxRow> {
        // The CHECK constraints make both failures impossible short of manual edits.
        let status = OutboxStatus::parse(&self.status)
            .ok_or_else(|| StoreError::Invalid(format!("outbox {}: unknown status `{}`", self.id, self.status)))?;
        let delivery = match &self.delivery {
            Some(d) => Some(
                DeliveryState::parse(d)
                    .ok_or_else(|| StoreError::Invalid(format!("outbox {}: unknown delivery `{d}`", self.id)))?,
            ),
            None => None,
        };
        Ok(OutboxRow {
            id: self.id,
            member: self.member,
            message: self.message,
            status,
            attempts: self.attempts,
            next_attempt_at: self.next_attempt_at.map(from_db),
            last_error: self.last_error,
            error_code: self.error_code,
            wamid: self.wamid,
            delivery,
            inbound_wamid: self.inbound_wamid,
            created_at: from_db(self.created_at),
            published_at: self.published_at.map(from_db),
            sent_at: self.sent_at.map(from_db),
            updated_at: from_db(self.updated_at),
            to_address: self.to_address,
            fallback: self.fallback,
            deferred_at: self.deferred_at.map(from_db),
            window_action: self.window_action,
        })
    }
}

/// Statuses a send outcome may be recorded over. `sent` and `dead` are final.
pub(super) const OPEN: [&str; 2] = ["pending", "failed"];

/// The dead-letter reason of a row whose member left the household before it was sent.
pub const NOT_A_MEMBER: &str = "recipient is no longer a household member";

impl Store {
    /// Pending rows never published and committed at or before `older_than`, oldest
    /// first: the sweep re-publishes them. Pass `now` minus a grace period, so that rows
    /// the worker is about to publish right after its commit are left to it.
    pub fn unpublished_outbox(&self, older_than: DateTime<Utc>, limit: i64) -> Result<Vec<OutboxRow>> {
        let mut conn = self.pool.get()?;
        let rows: Vec<RawOutbox> = outbox::table
            .filter(outbox::status.eq("pending"))
            .filter(outbox::published_at.is_null())
            // Parked rows wait for their member, not for the sweep.
            .filter(outbox::deferred_at.is_null())
            .filter(outbox::created_at.le(to_db(older_than)))
            .order(outbox::id)
            .limit(limit)
            .select(RawOutbox::as_select())
            .load(&mut *conn)?;
        rows.into_iter().map(RawOutbox::into_row).collect()
    }

    /// Records that these rows were published to the outbound queue. Keeps the first
    /// publish time if a row is published again. Returns how many rows changed.
    pub fn mark_published(&self, ids: &[i64], now: DateTime<Utc>) -> Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut conn = self.pool.get()?;
        let now = to_db(now);
        Ok(diesel::update(
            outbox::table
                .filter(outbox::id.eq_any(ids))
                .filter(outbox::published_at.is_null()),
        )
        .set((outbox::published_at.eq(now), outbox::updated_at.eq(now)))
        .execute(&mut *conn)?)
    }

    /// One row by id, if it exists.
    pub fn outbox_row(&self, id: i64) -> Result<Option<OutboxRow>> {
        let mut conn = self.pool.get()?;
        let row: Option<RawOutbox> = outbox::table
            .find(id)
            .select(RawOutbox::as_select())
            .first(&mut *conn)
            .optional()?;
        row.map(RawOutbox::into_row).transpose()
    }

    /// Rows due again, soonest first (ties by id, so one member's rows keep their order):
    /// `failed` rows whose retry time has come, and `pending` rows the sender held back
    /// (an older row of the member was unsent, or pacing) whose `next_attempt_at` has
    /// come. Rows under a live claim are left to their sender.
    pub fn retry_due(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<OutboxRow>> {
        let mut conn = self.pool.get()?;
        let rows: Vec<RawOutbox> = outbox::table
            .filter(outbox::status.eq_any(OPEN))
            .filter(outbox::next_attempt_at.le(to_db(now)))
            .filter(outbox::claimed_until.is_null().or(outbox::claimed_until.le(to_db(now))))
            .order((outbox::next_attempt_at, outbox::id))
            .limit(limit)
            .select(RawOutbox::as_select())
            .load(&mut *conn)?;
        rows.into_iter().map(RawOutbox::into_row).collect()
    }

    /// The Graph API accepted the row's message and named it `wamid`.
    ///
    /// Returns `false` (and changes nothing) unless the row is `pending` or `failed`:
    /// a redelivered queue entry for a row already sent or dead must not be sent again,
    /// and the caller learns that here.
    pub fn mark_sent(&self, id: i64, wamid: &str, now: DateTime<Utc>) -> Result<bool> {
        let mut conn = self.pool.get()?;
        let now = to_db(now);
        let n = diesel::update(outbox::table.find(id).filter(outbox::status.eq_any(OPEN)))
            .set((
                outbox::status.eq("sent"),
                outbox::wamid.eq(wamid),
                outbox::attempts.eq(outbox::attempts + 1),
                outbox::next_attempt_at.eq(None::<NaiveDateTime>),
                outbox::sent_at.eq(now),
                outbox::updated_at.eq(now),
                outbox::claimed_until.eq(None::<NaiveDateTime>),
                outbox::claimed_by.eq(None::<String>),
            ))
            .execute(&mut *conn)?;
        Ok(n == 1)
    }

    /// A retryable failure: the row becomes `failed`, due again at `next_attempt_at`.
    /// Returns `false` if the row is not `pending`/`failed` (nothing changed).
    pub fn mark_retry(
        &self,
        id: i64,
        error_code: Option<i64>,
        reason: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<bool> {
        let mut conn = self.pool.get()?;
        let n = diesel::update(outbox::table.find(id).filter(outbox::status.eq_any(OPEN)))
            .set((
                outbox::status.eq("failed"),
                outbox::attempts.eq(outbox::attempts + 1),
                outbox::next_attempt_at.eq(Some(to_db(next_attempt_at))),
                outbox::error_code.eq(error_code),
                outbox::last_error.eq(reason),
                // Bookkeeping only; decisions use next_attempt_at, which the caller set.
                outbox::updated_at.eq(to_db(Utc::now())),
                outbox::claimed_until.eq(None::<NaiveDateTime>),
                outbox::claimed_by.eq(None::<String>),
            ))
            .execute(&mut *conn)?;
        Ok(n == 1)
    }

    /// A permanent failure: the row becomes `dead` with the reason (the dead letter).
    /// Returns `false` if the row is not `pending`/`failed` (nothing changed).
    pub fn mark_dead(&self, id: i64, error_code: Option<i64>, reason: &str) -> Result<bool> {
        let mut conn = self.pool.get()?;
        let n = diesel::update(outbox::table.find(id).filter(outbox::status.eq_any(OPEN)))
            .set((
                outbox::status.eq("dead"),
                outbox::attempts.eq(outbox::attempts + 1),
                outbox::next_attempt_at.eq(None::<NaiveDateTime>),
                outbox::error_code.eq(error_code),
                outbox::last_error.eq(reason),
                outbox::updated_at.eq(to_db(Utc::now())),
                outbox::claimed_until.eq(None::<NaiveDateTime>),
                outbox::claimed_by.eq(None::<String>),
            ))
            .execute(&mut *conn)?;
        Ok(n == 1)
    }

    /// A status webhook for the message WhatsApp calls `wamid`. Returns whether such a
    /// row exists (`false`: not ours, or the webhook beat `mark_sent`).
    ///
    /// Meta may deliver statuses out of order, so the state only moves forward
    /// (`sent` < `delivered` < `read` < `played`; `failed` is terminal and wins);
    /// a stale or repeated status is accepted and ignored. `error` (code, reason) is
    /// recorded with a status that is applied. An unknown `status` is
    /// [`StoreError::Invalid`].
    pub fn update_delivery(&self, wamid: &str, status: &str, error: Option<(i64, String)>) -> Result<bool> {
        let new = DeliveryState::parse(status)
            .ok_or_else(|| StoreError::Invalid(format!("unknown delivery status `{status}`")))?;
        // Everything strictly before `new` may be overwritten by it.
        let earlier: Vec<&str> = DeliveryState::ALL
            .iter()
            .filter(|s| **s < new)
            .map(|s| s.as_str())
            .collect();
        let mut conn = self.pool.get()?;
        let target = outbox::table
            .filter(outbox::wamid.eq(wamid))
            .filter(outbox::delivery.is_null().or(outbox::delivery.eq_any(earlier)));
        let now = to_db(Utc::now());
        let n = match error {
            Some((code, reason)) => diesel::update(target)
                .set((
                    outbox::delivery.eq(new.as_str()),
                    outbox::error_code.eq(code),
                    outbox::last_error.eq(reason),
                    outbox::updated_at.eq(now),
                ))
                .execute(&mut *conn)?,
            None => diesel::update(target)
                .set((outbox::delivery.eq(new.as_str()), outbox::updated_at.eq(now)))
                .execute(&mut *conn)?,
        };
        if n > 0 {
            return Ok(true);
        }
        let exists: i64 = outbox::table
            .filter(outbox::wamid.eq(wamid))
            .count()
            .get_result(&mut *conn)?;
        Ok(exists > 0)
    }

    // ---- the 24-hour window ----------------------------------------------------------

    /// When `member` last wrote (their window is open for 24 hours after), if ever.
    pub fn last_inbound(&self, member: &str) -> Result<Option<DateTime<Utc>>> {
        let mut conn = self.pool.get()?;
        let at: Option<Option<NaiveDateTime>> = conversations::table
            .filter(conversations::member.eq(member))
            .select(conversations::last_inbound_at)
            .first(&mut *conn)
            .optional()?;
        Ok(at.flatten().map(from_db))
    }

    /// Parks an open row until its member writes again (window closed, policy `defer`).
    /// Returns `false` if the row is not `pending`/`failed`.
    pub fn mark_deferred(&self, id: i64, now: DateTime<Utc>) -> Result<bool> {
        let mut conn = self.pool.get()?;
        let now = to_db(now);
        let n = diesel::update(outbox::table.find(id).filter(outbox::status.eq_any(OPEN)))
            .set((
                outbox::status.eq("pending"),
                outbox::next_attempt_at.eq(None::<NaiveDateTime>),
                outbox::deferred_at.eq(Some(now)),
                outbox::window_action.eq("deferred"),
                outbox::updated_at.eq(now),
                // Parked, not in flight: the sender's lease ends here.
                outbox::claimed_until.eq(None::<NaiveDateTime>),
                outbox::claimed_by.eq(None::<String>),
            ))
            .execute(&mut *conn)?;
        Ok(n == 1)
    }

    /// Records what the window rule did to a row (`template` after the fallback was
    /// sent in its place, `dropped` after [`Store::mark_dead`]).
    pub fn mark_window_action(&self, id: i64, action: &str) -> Result<()> {
        let mut conn = self.pool.get()?;
        diesel::update(outbox::table.find(id))
            .set(outbox::window_action.eq(action))
            .execute(&mut *conn)?;
        Ok(())
    }

    /// The member wrote: un-parks their deferred rows and returns them, oldest first, to
    /// publish. They count as unpublished again until published, so the sweep recovers
    /// them if the caller dies before publishing.
    pub fn wake_deferred(&self, member: &str, now: DateTime<Utc>) -> Result<Vec<i64>> {
        let mut conn = self.pool.get()?;
        let mut ids: Vec<i64> = diesel::update(
            outbox::table
                .filter(outbox::member.eq(member))
                .filter(outbox::status.eq("pending"))
                .filter(outbox::deferred_at.is_not_null()),
        )
        .set((
            outbox::deferred_at.eq(None::<NaiveDateTime>),
            outbox::published_at.eq(None::<NaiveDateTime>),
            outbox::updated_at.eq(to_db(now)),
        ))
        .returning(outbox::id)
        .get_results(&mut *conn)?;
        ids.sort_unstable();
        Ok(ids)
    }

    /// Meta reported, in a `failed` status, that the message it called `wamid` hit a
    /// closed 24-hour window (131047). Applies the row's window plan once, as if the
    /// window had been closed at send time: a new row with the fallback template (to
    /// publish; returned), or a parked copy (policy `defer`), or nothing (`drop`). The
    /// original row is marked `replaced`/`dropped` so a repeated status does nothing.
    pub fn window_closed_after_send(&self, wamid: &str, now: DateTime<Utc>) -> Result<Option<i64>> {
        let mut conn = self.pool.get()?;
        let db_now = to_db(now);
        write_tx(&mut conn, |conn| {
            let row: Option<RawOutbox> = outbox::table
                .filter(outbox::wamid.eq(wamid))
                .filter(outbox::window_action.is_null())
                .select(RawOutbox::as_select())
                .first(conn)
                .optional()?;
            let Some(row) = row.map(RawOutbox::into_row).transpose()? else {
                return Ok(None);
            };
            let plan = row.window_plan()?;
            let decision = plan.decide(&row.out_message()?, None, now);
            // (what the old row becomes, the new row: message, plan, parked)
            let (action, new) = match decision {
                // A template cannot hit the window; nothing to replace it with.
                WindowDecision::Send => return Ok(None),
                WindowDecision::SendTemplate(t) => ("replaced", Some((serde_json::to_string(&t)?, None, false))),
                WindowDecision::Defer => ("replaced", Some((row.message.clone(), row.fallback.clone(), true))),
                WindowDecision::Drop => ("dropped", None),
            };
            diesel::update(outbox::table.find(row.id))
                .set((outbox::window_action.eq(action), outbox::updated_at.eq(db_now)))
                .execute(conn)?;
            let Some((message, fallback, deferred)) = new else {
                return Ok(None);
            };
            let id = insert_outbox(
                conn,
                &NewOutbox {
                    member: &row.member,
                    to_address: row.to_address.as_deref(),
                    message: &message,
                    fallback: fallback.as_deref(),
                    inbound_wamid: row.inbound_wamid.as_deref(),
                    deferred,
                },
                db_now,
            )?;
            if !deferred {
                diesel::update(outbox::table.find(id))
                    .set(outbox::window_action.eq("template"))
                    .execute(conn)?;
            }
            Ok((!deferred).then_some(id))
        })
    }
}

/// An outbox row to insert (`pending`).
pub(super) struct NewOutbox<'a> {
    /// Recipient member.
    pub member: &'a str,
    /// The recipient's address at commit (see [`address_of`]); `None`: resolved at send.
    pub to_address: Option<&'a str>,
    /// `OutMessage` JSON.
    pub message: &'a str,
    /// `WindowPlan` JSON, if not the default.
    pub fallback: Option<&'a str>,
    /// The inbound message that caused it.
    pub inbound_wamid: Option<&'a str>,
    /// Parked until the member writes (the window was closed).
    pub deferred: bool,
}

pub(super) fn insert_outbox(
    conn: &mut AnyConnection,
    row: &NewOutbox<'_>,
    now: NaiveDateTime,
) -> std::result::Result<i64, DieselError> {
    diesel::insert_into(outbox::table)
        .values((
            outbox::member.eq(row.member),
            outbox::to_address.eq(row.to_address),
            outbox::message.eq(row.message),
            outbox::status.eq("pending"),
            outbox::attempts.eq(0),
            outbox::inbound_wamid.eq(row.inbound_wamid),
            outbox::created_at.eq(now),
            outbox::updated_at.eq(now),
            outbox::fallback.eq(row.fallback),
            outbox::deferred_at.eq(row.deferred.then_some(now)),
            outbox::window_action.eq(row.deferred.then_some("deferred")),
        ))
        .returning(outbox::id)
        .get_result(conn)
}
