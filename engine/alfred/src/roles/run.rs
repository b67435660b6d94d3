//! Running one event through the pure engine and committing what it produced: the one
//! path every event takes, whether it is an inbound message (the worker) or a schedule
//! slot or a fired timer (the scheduler). Keeping it in one place is what makes "the same
//! transaction and the same outbox" true for all of them.

use std::sync::Arc;

use alfred_core::data::HouseholdData;
use alfred_core::event::{Event, EventKind, Trace};
use alfred_core::flow::FlowSet;
use alfred_core::roster;
use chrono::{DateTime, Utc};

use crate::edges::queue::{Queue, QueueError};
use crate::edges::store::{CommitOutcome, EventCommit, Fired, OrderCheck, Store, StoreError};

/// Outbox-stream entries that start with this mark an inbound message as read (the
/// rest of the entry is its wamid); all other entries are outbox row ids.
pub const READ_PREFIX: &str = "read:";

/// What [`run_event`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRun {
    /// Whether it was committed (and which outbox rows to publish) or a duplicate.
    pub outcome: CommitOutcome,
    /// The engine's trace (empty for a duplicate, which never reaches the engine's result).
    pub trace: Vec<Trace>,
}

/// How often an event is rerun after losing an optimistic-concurrency race before the
/// worker gives up for now (the entry stays pending and is retried later).
const MAX_CONFLICTS: usize = 32;

/// The key under which one member's run of a schedule slot is deduplicated.
pub fn schedule_run_key(flow: &str, trigger: usize) -> String {
    format!("{flow}#{trigger}")
}

/// Loads the member's conversation and the household data, runs the engine and commits
/// every effect in one transaction (see [`Store::commit_event`]). Blocking: call it on
/// the blocking pool. `inbound_wamid` makes a redelivered message a no-op; a timer or
/// schedule event is consumed in the same transaction (see [`EventCommit::fired`]), so
/// firing it twice is a no-op too.
pub fn run_event(
    store: &Store,
    flows: &FlowSet,
    event: Event,
    inbound_wamid: Option<String>,
    now: DateTime<Utc>,
) -> Result<EventRun, StoreError> {
    run_event_ordered(store, flows, &event, inbound_wamid, None, now, None)
}

/// The household data at a version, as [`Store::load_data_versioned`] returns it.
pub type LoadedData = (Arc<HouseholdData>, i64);

/// [`run_event`] for an inbound message with its place in the sender's arrival order:
/// the outcome may be [`CommitOutcome::Held`] (see [`crate::roles::order`]).
///
/// **Several workers, no lost updates.** Nothing is locked while the engine runs. The
/// commit is a compare-and-swap on the conversation's version and, if the event changes
/// lists or records, on the household data version; if either moved, nothing is
/// written and the event is rerun on fresh state (the engine is pure and fast, so a
/// rerun is cheap and gives exactly the result a serial execution would have).
///
/// `loaded` is household data the caller already read (the worker, to find the sender
/// in the roster): the first run uses it instead of reading the version again. Stale
/// data is safe: a commit that changes data checks the version, and a rerun reloads.
///
/// Each outbox row is addressed from the roster in effect in the data the engine ran on
/// (see [`EventCommit::roster`]).
pub fn run_event_ordered(
    store: &Store,
    flows: &FlowSet,
    event: &Event,
    inbound_wamid: Option<String>,
    order: Option<OrderCheck>,
    now: DateTime<Utc>,
    mut loaded: Option<LoadedData>,
) -> Result<EventRun, StoreError> {
    // A timer or schedule event consumes its timer row or its (schedule, slot, member)
    // run in the same transaction, so it can never fire twice.
    let fired = match &event.kind {
        EventKind::Timer(t) => Some(Fired::Timer { id: t.id.clone() }),
        EventKind::Schedule { flow, trigger, slot } => Some(Fired::Schedule {
            schedule: schedule_run_key(flow, *trigger),
            slot: *slot,
        }),
        EventKind::Message(_) => None,
    };
    for _ in 0..MAX_CONFLICTS {
        let (state, state_check) = store.load_conversation_versioned(&event.member)?;
        let (data, data_version) = match loaded.take() {
            Some(loaded) => loaded,
            None => store.load_data_versioned()?,
        };
        let outcome = alfred_core::handle(flows, &state, event, &data, now);
        let commit = EventCommit {
            inbound_wamid: inbound_wamid.clone(),
            member: event.member.clone(),
            state: outcome.state,
            effects: outcome.effects,
            now,
            order: order.clone(),
            state_check,
            data_version: Some(data_version),
            fired: fired.clone(),
            roster: Some(roster::effective(&flows.household, &data).to_vec()),
        };
        let committed = store.commit_event(&commit)?;
        if committed == CommitOutcome::Conflict {
            tracing::debug!("optimistic-concurrency conflict; rerunning the event");
            continue;
        }
        for t in &outcome.trace {
            tracing::debug!(trace = %t, "engine");
        }
        let trace = match committed {
            CommitOutcome::Committed { .. } => outcome.trace,
            _ => Vec::new(),
        };
        return Ok(EventRun {
            outcome: committed,
            trace,
        });
    }
    Err(StoreError::Contention(format!(
        "{MAX_CONFLICTS} conflicting commits in a row for one event"
    )))
}

/// Publishes a committed event's work to the outbox stream: first the read receipt for
/// the inbound message (blue ticks before the replies), then the new outbox row ids in
/// order. A crash before this finishes is repaired by the sender's re-publish sweep.
pub async fn publish<Q: Queue>(
    queue: &Q,
    outbox_stream: &str,
    read_wamid: Option<&str>,
    outbox_ids: &[i64],
) -> Result<(), QueueError> {
    if let Some(wamid) = read_wamid {
        queue
            .push(outbox_stream, format!("{READ_PREFIX}{wamid}").as_bytes())
            .await?;
    }
    for id in outbox_ids {
        queue.push(outbox_stream, id.to_string().as_bytes()).await?;
    }
    Ok(())
}
