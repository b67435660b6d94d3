//! The scheduler role: fires the flows' schedule slots and the durable timers.
//!
//! Each tick (every few seconds, on an injectable clock):
//!
//! 1. **Schedules.** For every schedule trigger (one per member zone for `timezone:
//!    member`) it asks [`due_slots`] which slot is due under the catch-up policy, then
//!    claims it by inserting its `(schedule, slot)` row. Only the scheduler whose insert
//!    wins runs it, so several scheduler processes fire a slot once. Running a slot means
//!    one engine event per member of the audience, each through [`run_event`] (the same
//!    transaction and outbox as an inbound message) and marked as run in that same
//!    transaction, so a fan-out interrupted by a crash is resumed, member by member,
//!    without duplicates, once the dead scheduler's lease expires. A slot due while an
//!    older one is still running follows the schedule's `overlap` policy.
//! 2. **Timers.** It leases due timers (see `Store::claim_due_timers`) and runs each as
//!    an engine event whose commit deletes the timer row: a crash before the commit
//!    leaves the timer to fire again later, a crash after it cannot fire it twice, and a
//!    cancelled timer (row deleted) never fires.
//!
//! Logs name flows, steps and schedule keys, never members or timer ids (timer ids are
//! written by flows and often contain a member's name).

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use alfred_core::event::{Event, EventKind, Trace};
use alfred_core::flow::FlowSet;
use alfred_core::model::Overlap;
use alfred_core::schedule::due_slots;
use chrono::{DateTime, TimeDelta, Utc};

use crate::edges::queue::Queue;
use crate::edges::store::{CommitOutcome, Store};
use crate::roles::blocking;
use crate::roles::run::{EventRun, publish, run_event, schedule_run_key};

/// The role's error type (shared with the other roles).
pub use crate::roles::RoleError as SchedulerError;

/// Timing of the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// How often it looks for due slots and timers. Slots fire at most this late.
    pub tick: Duration,
    /// How long a claimed slot is ours without renewal; a crashed scheduler's slot is
    /// taken over after this. Renewed before every member's event.
    pub slot_lease: TimeDelta,
    /// How long a leased timer is ours; a crashed scheduler's timer fires after this.
    pub timer_lease: TimeDelta,
    /// Timers leased per query.
    pub timer_batch: i64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(5),
            slot_lease: TimeDelta::minutes(2),
            timer_lease: TimeDelta::minutes(1),
            timer_batch: 50,
        }
    }
}

/// What one tick did (for logs and tests).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tick {
    /// Slots this scheduler claimed (to run now, or queued).
    pub slots_claimed: usize,
    /// Slots recorded as skipped by the catch-up or overlap policy.
    pub slots_skipped: usize,
    /// Slots whose fan-out this scheduler completed.
    pub slots_finished: usize,
    /// Schedule events committed (one per member per slot).
    pub schedule_events: usize,
    /// Timers fired (committed).
    pub timers_fired: usize,
    /// Timers that were gone by the time their event committed (cancelled, restarted
    /// or fired by another scheduler): nothing was written for them.
    pub timers_gone: usize,
    /// Outbox ids published.
    pub published: Vec<i64>,
    /// The engine traces of the committed events, in order.
    pub traces: Vec<Trace>,
}

/// A lease owner name for one scheduler: the instance name plus the pid and a random
/// part, so that two processes configured with the same instance name never share a
/// lease (the commit-time dedupe would still keep them exactly-once, but they would
/// both work on the same slot).
pub fn owner_name(instance: &str) -> String {
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    format!("{instance}/{}-{random:08x}", std::process::id())
}

/// The scheduler's dependencies.
pub struct Scheduler<Q> {
    /// The database.
    pub store: Store,
    /// The queues (outbox rows are published to `outbox_stream`).
    pub queue: Q,
    /// The flows whose schedules fire.
    pub flows: Arc<FlowSet>,
    /// Outbox stream name.
    pub outbox_stream: String,
    /// Lease owner name; unique per scheduler (see [`owner_name`]).
    pub owner: String,
    /// The clock (tests pass a virtual one).
    pub clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// Timing.
    pub config: SchedulerConfig,
}

impl<Q: Queue> Scheduler<Q> {
    /// One pass: due schedule slots, then due timers, at the clock's `now`.
    pub async fn tick(&self) -> Result<Tick, SchedulerError> {
        let now = (self.clock)();
        let mut tick = Tick::default();
        self.schedules(now, &mut tick).await?;
        self.timers(now, &mut tick).await?;
        if !tick.published.is_empty() {
            let store = self.store.clone();
            let ids = tick.published.clone();
            blocking(move || store.mark_published(&ids, now)).await?;
        }
        Ok(tick)
    }

    /// Runs ticks every `config.tick` until `shutdown` completes. A tick in progress
    /// when shutdown comes is finished first.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>, outage: &crate::roles::outage::Outage) {
        tokio::pin!(shutdown);
        let mut interval = tokio::time::interval(self.config.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut retry = outage.retry();
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = interval.tick() => match self.tick().await {
                    Ok(t) => {
                        retry.recovered();
                        if t.slots_claimed + t.slots_skipped + t.schedule_events + t.timers_fired > 0 {
                            tracing::info!(
                                slots_claimed = t.slots_claimed,
                                slots_skipped = t.slots_skipped,
                                schedule_events = t.schedule_events,
                                timers_fired = t.timers_fired,
                                "scheduler tick"
                            );
                        }
                    }
                    // The database or queue is down: try again after a back-off (at
                    // least the next tick); nothing was half-done (each event is its own
                    // transaction).
                    Err(e) => {
                        let wait = retry.failed(&e);
                        tokio::select! {
                            () = &mut shutdown => return,
                            () = tokio::time::sleep(wait) => {}
                        }
                    }
                },
            }
        }
    }

    async fn schedules(&self, now: DateTime<Utc>, tick: &mut Tick) -> Result<(), SchedulerError> {
        // Audiences come from the roster in effect (members added or removed over chat count).
        let store = self.store.clone();
        let stored = blocking(move || store.members_versioned()).await?;
        let members = stored
            .as_deref()
            .map_or(self.flows.household.members.as_slice(), Vec::as_slice);
        for (f, t, spec) in self.flows.schedules() {
            let flow = self.flows.flows[f].id.as_str();
            let run_key = schedule_run_key(flow, t);
            for group in self.flows.schedule_groups(spec, members) {
                let key = match group.zone {
                    Some(zone) => format!("{run_key}@{}", zone.name()),
                    None => run_key.clone(),
                };
                let store = self.store.clone();
                let k = key.clone();
                let last = blocking(move || store.last_schedule_slot(&k)).await?;
                let due = due_slots(&group.cron, last, now, spec.policy);
                if due.skipped > 0 {
                    tracing::info!(schedule = %key, missed = due.skipped, policy = ?spec.policy.catch_up, "missed slots not fired");
                }
                if let (None, Some(slot)) = (due.fire, due.last_skipped) {
                    // Moves the cursor past the downtime, so the next tick starts there.
                    tick.slots_skipped += usize::from(self.skip(&key, slot, now).await?);
                }
                if let Some(slot) = due.fire {
                    self.claim(&key, slot, now, spec.overlap, tick).await?;
                }
                let members: Vec<String> = group.members.iter().map(|m| m.name.clone()).collect();
                let target = SlotTarget {
                    key: &key,
                    run_key: &run_key,
                    flow,
                    trigger: t,
                    members: &members,
                };
                self.run_slots(&target, now, tick).await?;
            }
        }
        Ok(())
    }

    async fn skip(&self, key: &str, slot: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool, SchedulerError> {
        let (store, key, owner) = (self.store.clone(), key.to_owned(), self.owner.clone());
        blocking(move || store.skip_schedule_slot(&key, slot, &owner, now)).await
    }

    /// Claims a due slot, or records it as skipped if an older slot still runs and the
    /// overlap policy is `skip`. With `queue` it is claimed without a lease (queued).
    async fn claim(
        &self,
        key: &str,
        slot: DateTime<Utc>,
        now: DateTime<Utc>,
        overlap: Overlap,
        tick: &mut Tick,
    ) -> Result<(), SchedulerError> {
        let (store, k) = (self.store.clone(), key.to_owned());
        let running = blocking(move || store.running_schedule_slots(&k)).await?;
        if !running.is_empty() && overlap == Overlap::Skip {
            if self.skip(key, slot, now).await? {
                tick.slots_skipped += 1;
                tracing::info!(schedule = %key, slot = %slot, "slot skipped: the previous slot is still running");
            }
            return Ok(());
        }
        let lease = running.is_empty().then(|| now + self.config.slot_lease);
        let (store, k, owner) = (self.store.clone(), key.to_owned(), self.owner.clone());
        if blocking(move || store.claim_schedule_slot(&k, slot, &owner, now, lease)).await? {
            tick.slots_claimed += 1;
        }
        Ok(())
    }

    /// Runs the schedule's running slots, oldest first, as long as this scheduler can
    /// lease them: a slot another scheduler is running blocks the younger (queued) ones.
    async fn run_slots(
        &self,
        target: &SlotTarget<'_>,
        now: DateTime<Utc>,
        tick: &mut Tick,
    ) -> Result<(), SchedulerError> {
        loop {
            let (store, k) = (self.store.clone(), target.key.to_owned());
            let running = blocking(move || store.running_schedule_slots(&k)).await?;
            let Some(oldest) = running.first() else {
                return Ok(());
            };
            let slot = oldest.slot;
            if !self.fan_out(target, slot, now, tick).await? {
                return Ok(());
            }
            let (store, k, owner) = (self.store.clone(), target.key.to_owned(), self.owner.clone());
            if !blocking(move || store.finish_schedule_slot(&k, slot, &owner, now)).await? {
                return Ok(());
            }
            tick.slots_finished += 1;
        }
    }

    /// One engine event per member not run yet. Returns false if the lease is held by
    /// another scheduler (or was lost): the slot is theirs.
    async fn fan_out(
        &self,
        target: &SlotTarget<'_>,
        slot: DateTime<Utc>,
        now: DateTime<Utc>,
        tick: &mut Tick,
    ) -> Result<bool, SchedulerError> {
        let (store, rk) = (self.store.clone(), target.run_key.to_owned());
        let done = blocking(move || store.schedule_members_done(&rk, slot)).await?;
        if !self.lease(target.key, slot, now).await? {
            return Ok(false);
        }
        for member in target.members.iter().filter(|m| !done.contains(*m)) {
            // Renewed per member, so a long fan-out is not taken over while it runs.
            if !self.lease(target.key, slot, now).await? {
                return Ok(false);
            }
            let event = Event {
                member: member.clone(),
                kind: EventKind::Schedule {
                    flow: target.flow.to_owned(),
                    trigger: target.trigger,
                    slot,
                },
            };
            if let Some(run) = self.run_one(event, now, tick).await? {
                tick.schedule_events += 1;
                tick.traces.extend(run.trace);
            }
        }
        Ok(true)
    }

    async fn lease(&self, key: &str, slot: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool, SchedulerError> {
        let (store, k, owner, lease) = (
            self.store.clone(),
            key.to_owned(),
            self.owner.clone(),
            self.config.slot_lease,
        );
        blocking(move || store.lease_schedule_slot(&k, slot, &owner, now, lease)).await
    }

    async fn timers(&self, now: DateTime<Utc>, tick: &mut Tick) -> Result<(), SchedulerError> {
        loop {
            let (store, owner, cfg) = (self.store.clone(), self.owner.clone(), self.config);
            let due = blocking(move || store.claim_due_timers(&owner, now, cfg.timer_lease, cfg.timer_batch)).await?;
            let full = i64::try_from(due.len()).unwrap_or(i64::MAX) >= cfg.timer_batch;
            for timer in due {
                let (flow, step) = (timer.fired.flow.clone(), timer.fired.step.clone());
                let event = Event {
                    member: timer.member,
                    kind: EventKind::Timer(timer.fired),
                };
                match self.run_one(event, now, tick).await? {
                    Some(run) => {
                        tick.timers_fired += 1;
                        if run.trace.iter().any(|t| matches!(t, Trace::Ignored { .. })) {
                            tracing::info!(%flow, %step, "timer fired for a conversation that has moved on; ignored");
                        }
                        tick.traces.extend(run.trace);
                    }
                    None => tick.timers_gone += 1,
                }
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Runs one event and publishes its outbox rows; `None` if it was a duplicate.
    async fn run_one(
        &self,
        event: Event,
        now: DateTime<Utc>,
        tick: &mut Tick,
    ) -> Result<Option<EventRun>, SchedulerError> {
        let (store, flows) = (self.store.clone(), self.flows.clone());
        let run = blocking(move || run_event(&store, &flows, event, None, now)).await?;
        match &run.outcome {
            // Held and Conflict only come back for inbound messages / are retried inside.
            CommitOutcome::Duplicate | CommitOutcome::Held | CommitOutcome::Conflict => Ok(None),
            CommitOutcome::Committed { outbox_ids } => {
                publish(&self.queue, &self.outbox_stream, None, outbox_ids).await?;
                tick.published.extend(outbox_ids);
                Ok(Some(run))
            }
        }
    }
}

/// One schedule group's identity while its slots run.
struct SlotTarget<'a> {
    /// `schedule_slots` key.
    key: &'a str,
    /// `schedule_runs` key.
    run_key: &'a str,
    flow: &'a str,
    trigger: usize,
    members: &'a [String],
}

#[cfg(test)]
mod tests;
