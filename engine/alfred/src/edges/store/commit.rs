//! Writing one engine run atomically, and reading back what the engine needs.

use std::collections::BTreeMap;
use std::sync::Arc;

use alfred_core::data::{DataChange, HouseholdData, ListItem, Record};
use alfred_core::event::{ConversationState, Effect, OutMessage, Outbound, TimerSpec};
use alfred_core::flow::Member;
use alfred_core::roster;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::dsl::max;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel::upsert::excluded;

use super::conn::{AnyConnection, from_db, per_backend, to_db, write_tx};
use super::outbox::{NewOutbox, WindowPlan, insert_outbox};
use super::schema::{
    conversations, household_version, inbound_order, list_items, members, outbox, processed_inbound, records,
    schedule_runs, timers,
};
use super::{Result, Store, StoreError};

/// Everything one engine run produced for one member, to be written atomically.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventCommit {
    /// The inbound message's wamid, if the event was a message. Present → it is
    /// recorded as processed, and a second commit with it is a [`CommitOutcome::Duplicate`].
    /// Timer and schedule events have none (they are deduplicated elsewhere).
    pub inbound_wamid: Option<String>,
    /// Member whose conversation this is.
    pub member: String,
    /// The member's new conversation state.
    pub state: ConversationState,
    /// The effects, applied in order. `Effect::Error` is not stored (the caller logs it).
    pub effects: Vec<Effect>,
    /// The commit time, stamped on every row written.
    pub now: DateTime<Utc>,
    /// The inbound message's place in its sender's arrival order, if known.
    pub order: Option<OrderCheck>,
    /// What the conversation must still be for this commit to apply (optimistic concurrency).
    pub state_check: StateCheck,
    /// The household data version the engine ran on; `None`: not checked. Either way a
    /// commit that changes data bumps the version.
    pub data_version: Option<i64>,
    /// The timer or schedule slot this event is the firing of, consumed in the same
    /// transaction so that a crash in between cannot fire it twice. If it was consumed
    /// already (or the timer is gone), nothing is written: [`CommitOutcome::Duplicate`].
    pub fired: Option<Fired>,
    /// The roster in effect when the engine ran (the stored one, else household.yaml's):
    /// each outbox row gets its recipient's address from it (a `SetMembers` effect
    /// earlier in the same commit counts), so the sender reads no roster. `None` leaves
    /// member rows without an address, as rows written before addresses were stored.
    pub roster: Option<Vec<Member>>,
}

/// An inbound message's place in its sender's arrival order (see `crate::roles::order`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderCheck {
    /// Hash of the sender's WhatsApp id.
    pub sender: String,
    /// Its arrival number (1, 2, …) among that sender's messages.
    pub seq: i64,
    /// Commit even if an earlier message of the sender has not been handled (the wait
    /// for it timed out).
    pub force: bool,
}

/// The conversation version a commit expects to replace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StateCheck {
    /// No check: overwrite whatever is there (tests and tools).
    #[default]
    Unchecked,
    /// The member had no conversation row when it was loaded.
    Absent,
    /// The row had this version when it was loaded.
    At(i64),
}

/// What fired an event, recorded by [`Store::commit_event`] (see [`EventCommit::fired`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fired {
    /// A durable timer. Its row is deleted, but only while a scheduler holds its lease:
    /// a timer restarted meanwhile has lost the lease and stays (the restart wins).
    Timer {
        /// Timer id.
        id: String,
    },
    /// One member's run of a schedule slot; marked in `schedule_runs`.
    Schedule {
        /// `flow#trigger`.
        schedule: String,
        /// The slot.
        slot: DateTime<Utc>,
    },
}

/// What [`Store::commit_event`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Everything was written. The new outbox rows, in the order of the `Send` effects,
    /// to publish to the outbound queue.
    Committed {
        /// Ids of the new outbox rows.
        outbox_ids: Vec<i64>,
    },
    /// The inbound wamid had already been committed: nothing was written.
    Duplicate,
    /// An earlier message of the same sender has not been handled yet: nothing was
    /// written; try again shortly (or with [`OrderCheck::force`]).
    Held,
    /// The conversation or the household data changed since it was loaded: nothing was
    /// written; load again and rerun the engine.
    Conflict,
}

/// Why the commit transaction ended early. `Duplicate` rolls back without being a failure.
enum Abort {
    Duplicate,
    Held,
    Conflict,
    Failed(StoreError),
}

impl From<DieselError> for Abort {
    fn from(e: DieselError) -> Self {
        Abort::Failed(e.into())
    }
}

/// JSON serialised up front, so that the transaction holds its locks only for SQL.
enum Prepared<'a> {
    Send {
        out: &'a Outbound,
        json: String,
        window: Option<String>,
    },
    Data(&'a DataChange, Option<String>),
    StartTimer {
        spec: &'a TimerSpec,
        fired: String,
    },
    CancelTimer(&'a str),
}

impl Store {
    /// Writes one engine run in **one** transaction:
    ///
    /// 1. the processed-inbound marker (if `inbound_wamid` is set): if it exists
    ///    already, the transaction is rolled back and [`CommitOutcome::Duplicate`]
    ///    returned; concurrent commits of one wamid wait on each other (Postgres: the
    ///    unique index; SQLite: the write lock) and exactly one wins; the same for
    ///    `fired` (the timer row is deleted, the schedule run is marked);
    /// 2. the member's conversation state (upsert);
    /// 3. the effects, in order: `Data` with exactly `HouseholdData::apply`'s semantics,
    ///    `Send` as a `pending` outbox row, `StartTimer` as an upsert by id (a restarted
    ///    timer loses any scheduler lease), `CancelTimer` as a delete.
    ///
    /// Any failure rolls everything back, the marker included, so a redelivery retries
    /// the whole event.
    pub fn commit_event(&self, commit: &EventCommit) -> Result<CommitOutcome> {
        let state = serde_json::to_string(&commit.state)?;
        let effects = prepare(&commit.effects)?;
        let now = to_db(commit.now);
        let mut conn = self.pool.get()?;
        let changes_data = commit.effects.iter().any(|e| matches!(e, Effect::Data(_)));
        let run = write_tx(&mut conn, |conn| {
            if let Some(order) = &commit.order {
                check_order(conn, order, now)?;
            }
            if let Some(wamid) = &commit.inbound_wamid {
                mark_processed(conn, wamid, &commit.member, now)?;
            }
            match &commit.fired {
                None => {}
                Some(Fired::Timer { id }) => {
                    let consumed =
                        diesel::delete(timers::table.filter(timers::id.eq(id).and(timers::locked_by.is_not_null())))
                            .execute(conn)?;
                    if consumed == 0 {
                        return Err(Abort::Duplicate);
                    }
                }
                Some(Fired::Schedule { schedule, slot }) => {
                    let inserted = per_backend!(conn, |c| diesel::insert_into(schedule_runs::table)
                        .values((
                            schedule_runs::schedule.eq(schedule),
                            schedule_runs::slot.eq(to_db(*slot)),
                            schedule_runs::member.eq(&commit.member),
                            schedule_runs::run_at.eq(now),
                        ))
                        .on_conflict_do_nothing()
                        .execute(c))?;
                    if inserted == 0 {
                        return Err(Abort::Duplicate);
                    }
                }
            }
            write_conversation(conn, &commit.member, &state, commit.state_check, now)?;
            if changes_data {
                bump_data_version(conn, commit.data_version)?;
            }
            if commit.inbound_wamid.is_some() {
                record_inbound(conn, &commit.member, now)?;
            }
            let mut outbox_ids = Vec::new();
            // The roster each send is addressed from: a `SetMembers` before it counts.
            let mut roster = commit.roster.as_deref();
            for effect in &effects {
                match effect {
                    Prepared::Send { out, json, window } => {
                        let to_address = roster.and_then(|r| roster::find(r, &out.to)).and_then(address_of);
                        let row = NewOutbox {
                            member: &out.to,
                            to_address: to_address.as_deref(),
                            message: json,
                            fallback: window.as_deref(),
                            inbound_wamid: commit.inbound_wamid.as_deref(),
                            deferred: false,
                        };
                        outbox_ids.push(insert_outbox(conn, &row, now)?);
                    }
                    Prepared::Data(change, fields) => {
                        apply_change(conn, change, fields.as_deref(), now)?;
                        if let DataChange::SetMembers { members } = change {
                            roster = Some(members);
                        }
                    }
                    Prepared::StartTimer { spec, fired } => upsert_timer(conn, spec, fired, now)?,
                    Prepared::CancelTimer(id) => {
                        diesel::delete(timers::table.filter(timers::id.eq(*id))).execute(conn)?;
                    }
                }
            }
            Ok(outbox_ids)
        });
        outcome(run)
    }

    /// Commits the fixed reply to a non-member's message in one transaction: the arrival
    /// order, the processed-wamid marker (a redelivery is a [`CommitOutcome::Duplicate`])
    /// and an outbox row addressed to `to_address` rather than to a member. No
    /// conversation is kept for a stranger.
    pub fn commit_stranger_reply(
        &self,
        inbound_wamid: &str,
        to_address: &str,
        message: &OutMessage,
        order: Option<&OrderCheck>,
        now: DateTime<Utc>,
    ) -> Result<CommitOutcome> {
        let json = serde_json::to_string(message)?;
        let now = to_db(now);
        let mut conn = self.pool.get()?;
        let run = write_tx(&mut conn, |conn| {
            if let Some(order) = order {
                let forced = OrderCheck {
                    force: true,
                    ..order.clone()
                };
                check_order(conn, &forced, now)?;
            }
            mark_processed(conn, inbound_wamid, "", now)?;
            let id: i64 = diesel::insert_into(outbox::table)
                .values((
                    outbox::member.eq(""),
                    outbox::to_address.eq(to_address),
                    outbox::message.eq(&json),
                    outbox::status.eq("pending"),
                    outbox::attempts.eq(0),
                    outbox::inbound_wamid.eq(inbound_wamid),
                    outbox::created_at.eq(now),
                    outbox::updated_at.eq(now),
                ))
                .returning(outbox::id)
                .get_result(conn)?;
            Ok(vec![id])
        });
        outcome(run)
    }

    /// Records an inbound message that runs no event (a non-member's) as handled in its
    /// sender's arrival order, so the sender's next message does not wait for it.
    pub fn advance_order(&self, order: &OrderCheck, now: DateTime<Utc>) -> Result<()> {
        let forced = OrderCheck {
            force: true,
            ..order.clone()
        };
        let mut conn = self.pool.get()?;
        let run = write_tx(&mut conn, |conn| check_order(conn, &forced, to_db(now)));
        match run {
            Ok(()) => Ok(()),
            Err(Abort::Failed(e)) => Err(e),
            // check_order only fails with Held, and never when forced.
            Err(Abort::Duplicate | Abort::Held | Abort::Conflict) => {
                Err(StoreError::Invalid("arrival order could not be advanced".into()))
            }
        }
    }

    /// The member's conversation state with the check a commit of its successor needs
    /// ([`StateCheck::Absent`] if none is stored, with the default idle state).
    pub fn load_conversation_versioned(&self, member: &str) -> Result<(ConversationState, StateCheck)> {
        let mut conn = self.pool.get()?;
        let row: Option<(String, i64)> = conversations::table
            .filter(conversations::member.eq(member))
            .select((conversations::state, conversations::version))
            .first(&mut *conn)
            .optional()?;
        Ok(match row {
            Some((json, version)) => (serde_json::from_str(&json)?, StateCheck::At(version)),
            None => (ConversationState::default(), StateCheck::Absent),
        })
    }

    /// The household data and the version it is at least as new as.
    ///
    /// Cached per store (clones share it): while the version in the database is the one
    /// cached, no list or record is read. Loading happens outside any transaction, so
    /// the data may be newer than the version read first; the label is then stale, which
    /// only costs a reload or an optimistic-concurrency retry, never a wrong commit.
    pub fn load_data_versioned(&self) -> Result<(Arc<HouseholdData>, i64)> {
        let version: i64 = {
            let mut conn = self.pool.get()?;
            household_version::table
                .filter(household_version::id.eq(1))
                .select(household_version::version)
                .first(&mut *conn)?
        };
        if let Some((cached, data)) = &*self.data_cache.lock().unwrap_or_else(|p| p.into_inner())
            && *cached == version
        {
            return Ok((data.clone(), version));
        }
        let data = Arc::new(self.load_data()?);
        *self.data_cache.lock().unwrap_or_else(|p| p.into_inner()) = Some((version, data.clone()));
        Ok((data, version))
    }

    /// The stored roster (`None`: household.yaml's members hold), cached per store like
    /// the data: while the household version is unchanged, nothing is read but the
    /// version. The sender and the scheduler use this instead of the whole data.
    pub fn members_versioned(&self) -> Result<Option<Arc<Vec<Member>>>> {
        let mut conn = self.pool.get()?;
        let version: i64 = household_version::table
            .filter(household_version::id.eq(1))
            .select(household_version::version)
            .first(&mut *conn)?;
        if let Some((cached, members)) = &*self.members_cache.lock().unwrap_or_else(|p| p.into_inner())
            && *cached == version
        {
            return Ok(members.clone());
        }
        let members = load_members(&mut conn)?.map(Arc::new);
        *self.members_cache.lock().unwrap_or_else(|p| p.into_inner()) = Some((version, members.clone()));
        Ok(members)
    }

    /// The member's conversation state, or the default (idle) state if none is stored.
    pub fn load_conversation(&self, member: &str) -> Result<ConversationState> {
        let mut conn = self.pool.get()?;
        let state: Option<String> = conversations::table
            .filter(conversations::member.eq(member))
            .select(conversations::state)
            .first(&mut *conn)
            .optional()?;
        Ok(match state {
            Some(json) => serde_json::from_str(&json)?,
            None => ConversationState::default(),
        })
    }

    /// All household data, lists and collections in their `HouseholdData` order
    /// (items in order of first insertion, records in creation order).
    ///
    /// A list or collection with no rows is absent, where the in-memory
    /// `HouseholdData::apply` keeps an empty entry after `ListClear`; both read the
    /// same through `HouseholdData::list` / `collection`.
    pub fn load_data(&self) -> Result<HouseholdData> {
        let mut conn = self.pool.get()?;
        let items: Vec<(String, String, String, i64, String, NaiveDateTime)> = list_items::table
            .order((list_items::list, list_items::pos, list_items::key))
            .select((
                list_items::list,
                list_items::key,
                list_items::name,
                list_items::qty,
                list_items::added_by,
                list_items::added_at,
            ))
            .load(&mut *conn)?;
        let recs: Vec<(String, String, String, String, NaiveDateTime, NaiveDateTime)> = records::table
            .order((records::collection, records::pos, records::id))
            .select((
                records::collection,
                records::id,
                records::fields,
                records::created_by,
                records::created_at,
                records::updated_at,
            ))
            .load(&mut *conn)?;
        let roster = load_members(&mut conn)?;
        drop(conn);

        let mut data = HouseholdData {
            members: roster,
            ..HouseholdData::default()
        };
        for (list, key, name, qty, added_by, added_at) in items {
            let qty = u32::try_from(qty)
                .map_err(|_| StoreError::Invalid(format!("list `{list}` item `{key}`: quantity {qty} out of range")))?;
            data.lists.entry(list).or_default().push(ListItem {
                key,
                name,
                qty,
                added_by,
                added_at: from_db(added_at),
            });
        }
        for (collection, id, fields, created_by, created_at, updated_at) in recs {
            let fields: BTreeMap<String, serde_json::Value> = serde_json::from_str(&fields)?;
            data.records.entry(collection).or_default().push(Record {
                id,
                fields,
                created_by,
                created_at: from_db(created_at),
                updated_at: from_db(updated_at),
            });
        }
        Ok(data)
    }
}

/// What a commit transaction amounted to: early ends other than a failure are outcomes.
fn outcome(run: std::result::Result<Vec<i64>, Abort>) -> Result<CommitOutcome> {
    match run {
        Ok(outbox_ids) => Ok(CommitOutcome::Committed { outbox_ids }),
        Err(Abort::Duplicate) => Ok(CommitOutcome::Duplicate),
        Err(Abort::Held) => Ok(CommitOutcome::Held),
        Err(Abort::Conflict) => Ok(CommitOutcome::Conflict),
        Err(Abort::Failed(e)) => Err(e),
    }
}

/// Records `wamid` as processed; [`Abort::Duplicate`] if it already was. Concurrent
/// commits of one wamid wait on each other (Postgres: the unique index; SQLite: the
/// write lock) and exactly one inserts.
fn mark_processed(conn: &mut AnyConnection, wamid: &str, member: &str, now: NaiveDateTime) -> Result<(), Abort> {
    let inserted = per_backend!(conn, |c| diesel::insert_into(processed_inbound::table)
        .values((
            processed_inbound::wamid.eq(wamid),
            processed_inbound::member.eq(member),
            processed_inbound::processed_at.eq(now),
        ))
        .on_conflict(processed_inbound::wamid)
        .do_nothing()
        .execute(c))?;
    if inserted == 0 {
        return Err(Abort::Duplicate);
    }
    Ok(())
}

/// Holds the message back if an earlier one of its sender is not handled yet; otherwise
/// records it as the sender's latest. A number at or below the last one is a late or
/// redelivered message: it goes through (the wamid marker catches redeliveries).
fn check_order(conn: &mut AnyConnection, order: &OrderCheck, now: NaiveDateTime) -> Result<(), Abort> {
    let last: i64 = inbound_order::table
        .filter(inbound_order::sender.eq(&order.sender))
        .select(inbound_order::last_seq)
        .first(conn)
        .optional()?
        .unwrap_or(0);
    if order.seq > last + 1 && !order.force {
        return Err(Abort::Held);
    }
    let new_last = last.max(order.seq);
    per_backend!(conn, |c| diesel::insert_into(inbound_order::table)
        .values((
            inbound_order::sender.eq(&order.sender),
            inbound_order::last_seq.eq(new_last),
            inbound_order::updated_at.eq(now),
        ))
        .on_conflict(inbound_order::sender)
        .do_update()
        .set((
            inbound_order::last_seq.eq(excluded(inbound_order::last_seq)),
            inbound_order::updated_at.eq(excluded(inbound_order::updated_at)),
        ))
        .execute(c))?;
    Ok(())
}

/// Writes the conversation, as a compare-and-swap on its version unless unchecked.
///
/// Under Postgres' read committed, a concurrent uncommitted writer of the same row makes
/// the `UPDATE` wait for it and then re-check the `WHERE`, so exactly one of two racing
/// commits matches the version; the other gets `Conflict` and reruns on fresh state.
fn write_conversation(
    conn: &mut AnyConnection,
    member: &str,
    state: &str,
    check: StateCheck,
    now: NaiveDateTime,
) -> Result<(), Abort> {
    let written = match check {
        StateCheck::At(version) => diesel::update(
            conversations::table.filter(conversations::member.eq(member).and(conversations::version.eq(version))),
        )
        .set((
            conversations::state.eq(state),
            conversations::updated_at.eq(now),
            conversations::version.eq(version + 1),
        ))
        .execute(conn)?,
        StateCheck::Absent => per_backend!(conn, |c| diesel::insert_into(conversations::table)
            .values((
                conversations::member.eq(member),
                conversations::state.eq(state),
                conversations::updated_at.eq(now),
                conversations::version.eq(1),
            ))
            .on_conflict(conversations::member)
            .do_nothing()
            .execute(c))?,
        StateCheck::Unchecked => per_backend!(conn, |c| diesel::insert_into(conversations::table)
            .values((
                conversations::member.eq(member),
                conversations::state.eq(state),
                conversations::updated_at.eq(now),
                conversations::version.eq(1),
            ))
            .on_conflict(conversations::member)
            .do_update()
            .set((
                conversations::state.eq(excluded(conversations::state)),
                conversations::updated_at.eq(excluded(conversations::updated_at)),
                conversations::version.eq(conversations::version + 1),
            ))
            .execute(c))?,
    };
    if written == 0 {
        return Err(Abort::Conflict);
    }
    Ok(())
}

/// Bumps the household data version; with `expected`, only if it is still that.
fn bump_data_version(conn: &mut AnyConnection, expected: Option<i64>) -> Result<(), Abort> {
    let row = household_version::table.filter(household_version::id.eq(1));
    let written = match expected {
        Some(v) => diesel::update(row.filter(household_version::version.eq(v)))
            .set(household_version::version.eq(v + 1))
            .execute(conn)?,
        None => diesel::update(row)
            .set(household_version::version.eq(household_version::version + 1))
            .execute(conn)?,
    };
    if written == 0 {
        return Err(Abort::Conflict);
    }
    Ok(())
}

fn prepare(effects: &[Effect]) -> Result<Vec<Prepared<'_>>> {
    let mut out = Vec::with_capacity(effects.len());
    for effect in effects {
        out.push(match effect {
            Effect::Send(o) => Prepared::Send {
                out: o,
                json: serde_json::to_string(&o.message)?,
                window: WindowPlan::of(o).to_json()?,
            },
            Effect::Data(change) => {
                let fields = match change {
                    DataChange::RecordPut { record, .. } => Some(serde_json::to_string(&record.fields)?),
                    _ => None,
                };
                Prepared::Data(change, fields)
            }
            Effect::StartTimer(spec) => Prepared::StartTimer {
                spec,
                fired: serde_json::to_string(&spec.fired)?,
            },
            Effect::CancelTimer { id } => Prepared::CancelTimer(id),
            // Not state: the worker logs it and counts it.
            Effect::Error { .. } => continue,
        });
    }
    Ok(out)
}

/// Stamps the member's last inbound message: their 24-hour window starts again.
/// Separate from the state upsert so that it stays one obvious line of intent.
fn record_inbound(conn: &mut AnyConnection, member: &str, now: NaiveDateTime) -> std::result::Result<(), DieselError> {
    diesel::update(conversations::table.filter(conversations::member.eq(member)))
        .set(conversations::last_inbound_at.eq(Some(now)))
        .execute(conn)?;
    Ok(())
}

/// Where WhatsApp reaches `member`, as `outbox.to_address` stores it: the E.164 phone
/// number, else `user:<id>` (Meta: phone numbers go out as E.164; username users by their
/// user id). `None` if the member has neither.
pub fn address_of(member: &Member) -> Option<String> {
    match (&member.phone, &member.user_id) {
        (Some(phone), _) => Some(phone.clone()),
        (None, Some(user)) => Some(format!("user:{user}")),
        (None, None) => None,
    }
}

/// One `DataChange`, as `HouseholdData::apply` would do it.
///
/// Order: `HouseholdData` keeps items in order of first insertion and a put of an
/// existing key replaces it *in place*. The `pos` column reproduces that: a new key
/// gets its list's `max(pos) + 1`, and the upsert never touches `pos`. (Two concurrent
/// transactions adding different keys to one list may get the same `pos`; the key
/// then breaks the tie. Nothing is lost, only that order is arbitrary.)
fn apply_change(
    conn: &mut AnyConnection,
    change: &DataChange,
    fields: Option<&str>,
    now: NaiveDateTime,
) -> Result<(), DieselError> {
    match change {
        DataChange::ListPut { list, item } => {
            let last: Option<i64> = list_items::table
                .filter(list_items::list.eq(list))
                .select(max(list_items::pos))
                .first(conn)?;
            let pos = last.unwrap_or(0) + 1;
            let added_at = to_db(item.added_at);
            per_backend!(conn, |c| diesel::insert_into(list_items::table)
                .values((
                    list_items::list.eq(list),
                    list_items::key.eq(&item.key),
                    list_items::name.eq(&item.name),
                    list_items::qty.eq(i64::from(item.qty)),
                    list_items::added_by.eq(&item.added_by),
                    list_items::added_at.eq(added_at),
                    list_items::pos.eq(pos),
                ))
                .on_conflict((list_items::list, list_items::key))
                .do_update()
                .set((
                    list_items::name.eq(excluded(list_items::name)),
                    list_items::qty.eq(excluded(list_items::qty)),
                    list_items::added_by.eq(excluded(list_items::added_by)),
                    list_items::added_at.eq(excluded(list_items::added_at)),
                ))
                .execute(c))?;
        }
        DataChange::ListRemove { list, key } => {
            diesel::delete(list_items::table.filter(list_items::list.eq(list).and(list_items::key.eq(key))))
                .execute(conn)?;
        }
        DataChange::ListClear { list } => {
            diesel::delete(list_items::table.filter(list_items::list.eq(list))).execute(conn)?;
        }
        DataChange::RecordPut { collection, record } => {
            let last: Option<i64> = records::table
                .filter(records::collection.eq(collection))
                .select(max(records::pos))
                .first(conn)?;
            let pos = last.unwrap_or(0) + 1;
            let fields = fields.unwrap_or("{}");
            let (created_at, updated_at) = (to_db(record.created_at), to_db(record.updated_at));
            per_backend!(conn, |c| diesel::insert_into(records::table)
                .values((
                    records::collection.eq(collection),
                    records::id.eq(&record.id),
                    records::fields.eq(fields),
                    records::created_by.eq(&record.created_by),
                    records::created_at.eq(created_at),
                    records::updated_at.eq(updated_at),
                    records::pos.eq(pos),
                ))
                .on_conflict((records::collection, records::id))
                .do_update()
                .set((
                    records::fields.eq(excluded(records::fields)),
                    records::created_by.eq(excluded(records::created_by)),
                    records::created_at.eq(excluded(records::created_at)),
                    records::updated_at.eq(excluded(records::updated_at)),
                ))
                .execute(c))?;
        }
        DataChange::RecordDelete { collection, id } => {
            diesel::delete(records::table.filter(records::collection.eq(collection).and(records::id.eq(id))))
                .execute(conn)?;
        }
        DataChange::SetMembers { members: roster } => {
            // The whole roster, replaced in this transaction (it is a handful of rows).
            diesel::delete(members::table).execute(conn)?;
            for (pos, m) in (0_i64..).zip(roster) {
                diesel::insert_into(members::table)
                    .values((
                        members::name.eq(&m.name),
                        members::pos.eq(pos),
                        members::phone.eq(m.phone.as_deref()),
                        members::user_id.eq(m.user_id.as_deref()),
                        members::role.eq(m.role.as_str()),
                        members::timezone.eq(m.timezone.name()),
                        members::language.eq(&m.language),
                    ))
                    .execute(conn)?;
            }
            readdress_open_rows(conn, roster, now)?;
        }
    }
    Ok(())
}

/// Unsent rows carry the address they were committed with; a roster change applies to
/// them in the same transaction, so the sender needs no roster read: a member's open rows
/// follow a new number, and a removed member's open rows are dead (as the sender used to
/// decide at send time). Stranger rows (`member` empty) are not the roster's.
fn readdress_open_rows(conn: &mut AnyConnection, roster: &[Member], now: NaiveDateTime) -> Result<(), DieselError> {
    let open_members: Vec<String> = outbox::table
        .filter(outbox::status.eq_any(super::outbox::OPEN))
        .filter(outbox::member.ne(""))
        .select(outbox::member)
        .distinct()
        .load(conn)?;
    for name in open_members {
        let rows = outbox::table
            .filter(outbox::member.eq(&name))
            .filter(outbox::status.eq_any(super::outbox::OPEN));
        // `roster::find` as the engine and the sender match names (exact, then any case).
        match roster::find(roster, &name).map(address_of) {
            Some(address) => {
                diesel::update(rows).set(outbox::to_address.eq(address)).execute(conn)?;
            }
            None => {
                diesel::update(rows)
                    .set((
                        outbox::status.eq("dead"),
                        outbox::next_attempt_at.eq(None::<NaiveDateTime>),
                        outbox::last_error.eq(super::outbox::NOT_A_MEMBER),
                        outbox::updated_at.eq(now),
                        outbox::claimed_until.eq(None::<NaiveDateTime>),
                        outbox::claimed_by.eq(None::<String>),
                    ))
                    .execute(conn)?;
            }
        }
    }
    Ok(())
}

/// A stored roster row: (name, phone, user_id, role, timezone, language).
type MemberRow = (String, Option<String>, Option<String>, String, String, String);

/// The stored roster, or `None` when no admin changed it (household.yaml's then holds).
fn load_members(conn: &mut AnyConnection) -> Result<Option<Vec<Member>>> {
    let rows: Vec<MemberRow> = members::table
        .order(members::pos)
        .select((
            members::name,
            members::phone,
            members::user_id,
            members::role,
            members::timezone,
            members::language,
        ))
        .load(conn)?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(rows.len());
    for (name, phone, user_id, role, timezone, language) in rows {
        let role = roster::parse_role(&role).map_err(|e| StoreError::Invalid(format!("member `{name}`: {e}")))?;
        let timezone =
            roster::parse_timezone(&timezone).map_err(|e| StoreError::Invalid(format!("member `{name}`: {e}")))?;
        out.push(Member {
            name,
            phone,
            user_id,
            role,
            timezone,
            language,
        });
    }
    Ok(Some(out))
}

/// Starting an existing timer id replaces it (TimerSpec's contract), lease included:
/// it is a new timer as far as the scheduler is concerned.
fn upsert_timer(
    conn: &mut AnyConnection,
    spec: &TimerSpec,
    fired: &str,
    now: NaiveDateTime,
) -> std::result::Result<(), DieselError> {
    let fire_at = to_db(spec.fire_at);
    per_backend!(conn, |c| diesel::insert_into(timers::table)
        .values((
            timers::id.eq(&spec.id),
            timers::member.eq(&spec.member),
            timers::fire_at.eq(fire_at),
            timers::fired.eq(fired),
            timers::created_at.eq(now),
        ))
        .on_conflict(timers::id)
        .do_update()
        .set((
            timers::member.eq(excluded(timers::member)),
            timers::fire_at.eq(excluded(timers::fire_at)),
            timers::fired.eq(excluded(timers::fired)),
            timers::created_at.eq(excluded(timers::created_at)),
            timers::locked_until.eq(None::<NaiveDateTime>),
            timers::locked_by.eq(None::<String>),
        ))
        .execute(c))?;
    Ok(())
}
